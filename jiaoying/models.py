"""Every mapped table, imported in one place so metadata (and Alembic) sees the whole schema."""

from config import auth, counters, eventlog, users
from config.database import Base
from geo import models as geo_models
from responses.callouts import models as callout_models
from responses.contacts import models as contacts_models
from responses.duty import models as duty_models
from responses.measures import models as measure_models
from responses.messaging import models as messaging_models
from responses.messaging import ratelimit as messaging_ratelimit
from responses.reports import models as info_report_models
from responses.runs import models as response_models
from warning import models as warning_models
from warning.consultation import models as consultation_models

__all__ = [
    "Base", "auth", "counters", "eventlog", "messaging_models", "messaging_ratelimit", "users", "warning_models",
    "consultation_models",
    "response_models", "contacts_models", "callout_models", "geo_models",
    "measure_models", "info_report_models", "duty_models",
]
