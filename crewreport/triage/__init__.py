"""Border Force triage (`/triage`, role `border_force`).

- `queue`: the queue's filters, its SQL, the new-since-last-look marks and
  the CSV export's cells;
- `workflow`: statuses and their transitions, the expiring lock, the
  transaction every officer action runs in, and the sealed history and notes;
- `views`: the routes (board, refresh, export, report page, actions, NRM sheet);
- `flight`: a flight's page and the decision for all its open reports.

Plaintext exists only in memory while a page is rendered: report bodies are
opened from the stored envelope on every view (each view is audited), and
what officers type (notes, status reasons) is sealed with HPKE to the current
Border Force key before it reaches the store (`crewreport.sealed_text`).
"""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("triage", __name__, url_prefix="/triage")

from . import flight, views  # noqa: E402, F401 - the routes register themselves on bp
