"""GDPR workflows: erasures (Art. 17) with reports and certificates, records of processing
(Art. 30), project data export and closure (governance.erasure, governance.records)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["gdpr"])
