"""Signing in needs the network. Offline, a way to sign in from the crew app
(its "Sign in" link, the set-up-again button) brings the crew member back to
the app and its notes, not to the browser's error page: an app on the Home
Screen has no back button to leave that page."""
from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.harness import LiveServer, set_up_then_cut_off, wait_ready

pytestmark = pytest.mark.e2e


def test_an_offline_sign_in_from_the_app_comes_back_to_the_app(page: Any, server: LiveServer) -> None:
    with set_up_then_cut_off(page, server):
        page.evaluate("location.assign('/auth/login?next=/')")  # what the app's sign-in step does
        page.wait_for_load_state()
        wait_ready(page)
        assert page.url == server.url + "/" and page.title() == "Cabin Notes"


def test_a_staff_page_is_not_turned_into_the_crew_app(page: Any, server: LiveServer) -> None:
    """Not from the app (typed, or a bookmark in a browser that once opened the
    crew app): the service worker leaves the navigation to the browser."""
    with set_up_then_cut_off(page, server), pytest.raises(Exception, match="ERR_"):
        page.goto(server.url + "/auth/login")  # no referrer: the browser's own offline answer


def test_a_sign_in_linked_from_another_site_is_not_turned_into_the_crew_app(page: Any, server: LiveServer) -> None:
    """A link on another site's front page has a referrer whose path is `/`
    too (its origin, under the browser's default policy): only the app's own
    page is the app."""
    with set_up_then_cut_off(page, server), pytest.raises(Exception, match="ERR_"):
        page.goto(server.url + "/auth/login?next=/", referer="http://elsewhere.example/")
