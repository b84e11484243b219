"""Evidence no API holds: documents and attestations people bring, the intake folder, people coverage."""

from collector.manual.documents import (
    AddedDocument,
    DocumentFacts,
    ImportedAttestations,
    Period,
    add_document,
    check_controls,
    controls_requiring,
    import_attestations,
    observed_from,
    open_files,
    parse_moment,
    parse_period,
)
from collector.manual.intake import IntakeReport, intake_pass, parse_sidecar
from collector.manual.people import CoverageCheck, Roster, check_people, read_roster
from collector.manual.streams import (
    ATTESTATIONS,
    DOCUMENTS,
    PEOPLE_COVERAGE,
    StoreFailed,
    criteria_of,
)

__all__ = [
    "ATTESTATIONS",
    "DOCUMENTS",
    "PEOPLE_COVERAGE",
    "AddedDocument",
    "CoverageCheck",
    "DocumentFacts",
    "ImportedAttestations",
    "IntakeReport",
    "Period",
    "Roster",
    "StoreFailed",
    "add_document",
    "check_controls",
    "check_people",
    "controls_requiring",
    "criteria_of",
    "import_attestations",
    "intake_pass",
    "observed_from",
    "open_files",
    "parse_moment",
    "parse_period",
    "parse_sidecar",
    "read_roster",
]
