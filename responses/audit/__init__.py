"""The post-event timeliness audit (时效审计): the report's shape, its figures, and its renderings.

The report is a plain dict (what ``report.json`` holds). Everything else — the KPIs, the HTML page,
the workbook — is computed from that dict, so the three files can never disagree with each other.

Inside `responses/` imports point one way, down this order (a package imports only those below it;
packages on one line are peers and do not import each other):

    drill → audit → duty → reports → measures → callouts → runs → messaging, contacts
"""

from responses.audit.kpis import compute_kpis
from responses.audit.shape import KPI_KEYS, TABLES

__all__ = ["KPI_KEYS", "TABLES", "compute_kpis"]
