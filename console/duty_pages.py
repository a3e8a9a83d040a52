"""Console pages: the duty room (roster, handover, duty log)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from console.security import check_csrf

router = APIRouter(prefix="/console", include_in_schema=False, dependencies=[Depends(check_csrf)])
