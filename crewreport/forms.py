"""Every HTML form of the app, in one place (Flask-WTF; CSRF on each)."""
from __future__ import annotations

from typing import Any

from flask import request
from flask_wtf import FlaskForm
from werkzeug.datastructures import CombinedMultiDict
from wtforms import BooleanField, Field, FileField, HiddenField, PasswordField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Regexp, ValidationError

# What a form with a stale or missing CSRF token is answered, wherever it was.
FORM_EXPIRED = "The form has expired; reload the page. Nothing was changed."


class Meaningful:
    """At least one letter or digit: a zero-width space is not a reason."""

    def __init__(self, message: str) -> None:
        self.message = message

    def __call__(self, form: Any, field: Field) -> None:
        if not any(c.isalnum() for c in field.data or ""):
            raise ValidationError(self.message)


# `formdata` not given: read it from the request (FlaskForm's own marker is private).
_FROM_REQUEST = object()


class Form(FlaskForm):
    """Every form of the app. Flask-WTF fills a form from request.files as
    well as request.form (and from a JSON body), so a text field sent as a
    file part reached the validators as a FileStorage (and a JSON number as
    an int) and `Length` raised a 500. A form without a file field reads
    only the urlencoded or multipart text fields: anything else counts as
    missing and gets the field's own message."""

    class Meta(FlaskForm.Meta):
        def wrap_formdata(self, form: Any, formdata: Any) -> Any:
            if formdata is not _FROM_REQUEST:
                return super().wrap_formdata(form, formdata)
            if not form.is_submitted():
                return None
            if any(isinstance(field, FileField) for field in form):
                return CombinedMultiDict((request.files, request.form))
            return request.form or None

    def __init__(self, formdata: Any = _FROM_REQUEST, **kwargs: Any) -> None:
        super().__init__(formdata=formdata, **kwargs)


class LoginForm(Form):
    username = StringField("Username", validators=[DataRequired(), Length(max=64)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])


class LogoutForm(Form):
    """Only the CSRF token: signing out is a state change too."""


class PasswordChangeForm(Form):
    current_password = PasswordField("Current password", validators=[DataRequired(), Length(max=1024)])
    new_password = PasswordField("New password", validators=[DataRequired(), Length(min=12, max=1024)])


class RecoveryCodesForm(Form):
    """New recovery codes: the password and a code from the app again, so a
    session left open is not enough to take over the second factor."""
    current_password = PasswordField("Current password", validators=[DataRequired(), Length(max=1024)])
    code = StringField("Code from your authenticator app",
                       validators=[DataRequired("Enter the code."), Length(max=32)])


# -- Border Force triage (issue 4) ---------------------------------------------

NOTE_MAX = 2000
REASON_MAX = 1000


class StatusForm(Form):
    """A status change; the reason is required at every step and sealed at rest."""
    status = SelectField("New status", choices=[])
    reason = TextAreaField("Reason", validators=[DataRequired("Give a reason for the change."),
                                                 Meaningful("Give a reason for the change."),
                                                 Length(max=REASON_MAX)])
    # The status the officer was looking at: a change made meanwhile by
    # someone else must not be overwritten from a stale page.
    from_status = HiddenField()
    # The last status change the page showed (`workflow.last_change`): a report
    # closed and reopened meanwhile shows its old status again, with a reason
    # the officer has not read.
    from_change = HiddenField(validators=[Regexp(r"^[0-9]{0,18}\Z", message="The form is damaged; reload the page.")])


class FlightDecisionForm(Form):
    """One decision for every open report of a flight, confirmed once. The
    form carries the reports the officer was shown: a report that arrived
    after the page loaded is never moved unseen."""
    decision = SelectField("Decision for the flight", choices=[])
    reason = TextAreaField("Reason (recorded on each report)",
                           validators=[DataRequired("Give a reason for the decision."),
                                       Meaningful("Give a reason for the decision."),
                                       Length(max=REASON_MAX)])
    # "id:status" for each open report shown (at most 51 characters and a
    # space): room for over 1 000 of them, a flood from one tablet included.
    report_ids = HiddenField(validators=[DataRequired("The form lists no report; reload the page."),
                                         Length(max=60000)])
    # The flight's last status change the page showed (`workflow.last_change`):
    # a report decided and reopened meanwhile shows its old status again.
    changes_seen = HiddenField(validators=[Regexp(r"^[0-9]{0,18}\Z", message="The form is damaged; reload the page.")])
    confirm = BooleanField("I have read the list of reports above; decide for all of them",
                           validators=[DataRequired("Tick the box to confirm the decision for the whole flight.")])


class AssignForm(Form):
    """Assign to an officer (0 = nobody); choices are filled in by the view."""
    assignee = SelectField("Assign to", coerce=int, choices=[])
    # Who the officer saw it assigned to (0 = nobody): a hand-over made
    # meanwhile by someone else must not be overwritten from a stale page.
    from_assignee = HiddenField()


class NoteForm(Form):
    text = TextAreaField("Note", validators=[DataRequired("A note cannot be empty."),
                                             Meaningful("A note cannot be empty."),
                                             Length(max=NOTE_MAX,
                                                    message=f"A note may be at most {NOTE_MAX} characters.")])


class ActionForm(Form):
    """Only the CSRF token: take or release a lock, revoke a device."""


# -- Airline security: crew administration ----------------------------------------

class CrewCreateForm(Form):
    """The name is made `CODE/name` in the airline's namespace (review.create_crew)."""
    username = StringField("Username", validators=[
        DataRequired(), Length(min=3, max=61),  # \Z, not $: "ab\n" would pass (and be made ZZ/ab)
        Regexp(r"^[A-Za-z0-9._-]+\Z", message="Letters, digits, dot, dash and underscore only.")])
    password = PasswordField("Initial password", validators=[
        DataRequired(), Length(min=12, max=1024, message="Use at least 12 characters (at most 1024).")])


class PasswordResetForm(Form):
    new_password = PasswordField("New password", validators=[
        DataRequired(), Length(min=12, max=1024, message="Use at least 12 characters (at most 1024).")])


# -- Second factor (staff) --------------------------------------------------------------

class CodeForm(Form):
    """The second step of a staff sign-in: a TOTP code or a recovery code."""
    code = StringField("Code", validators=[DataRequired("Enter the code."), Length(max=32)])
