"""Administrator pages: the audit trail and its integrity (placeholder until issue 4 lands)."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template_string

from .auth import role_required

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.get("/")
@role_required("admin")
def index() -> Any:
    return render_template_string("{% extends 'base.html' %}{% block content %}<h1>Admin</h1>{% endblock %}")
