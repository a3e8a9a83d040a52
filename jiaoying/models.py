"""Every mapped table, imported in one place so metadata (and Alembic) sees the whole schema."""

from config import counters, eventlog, users
from config.database import Base
from geo import models as geo_models
from responses import callout_models, contacts_models, info_report_models, measure_models, messaging_models
from responses import models as response_models
from warning import consultation_models
from warning import models as warning_models

__all__ = [
    "Base", "counters", "eventlog", "messaging_models", "users", "warning_models", "consultation_models",
    "response_models", "contacts_models", "callout_models", "geo_models",
    "measure_models", "info_report_models",
]
