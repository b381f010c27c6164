"""Airline security review (placeholder until issue 4 lands)."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template_string

from .auth import role_required

bp = Blueprint("review", __name__, url_prefix="/review")


@bp.get("/")
@role_required("airline_security")
def index() -> Any:
    return render_template_string("{% extends 'base.html' %}{% block content %}<h1>Reports</h1>{% endblock %}")
