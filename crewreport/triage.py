"""Border Force triage (placeholder until issue 4 lands)."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template_string

from .auth import role_required

bp = Blueprint("triage", __name__, url_prefix="/triage")


@bp.get("/")
@role_required("border_force")
def index() -> Any:
    return render_template_string("{% extends 'base.html' %}{% block content %}<h1>Queue</h1>{% endblock %}")
