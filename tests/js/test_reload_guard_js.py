"""The update banner's Reload (ui/sw-update.js reloadGuard): the note being
written is saved first, and when it could not be (a full storage, a save that
hangs or fails) the first tap says so and stays, instead of reloading under
"Your unfinished note is kept"; a second tap goes all the same."""
from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.e2e

TAPS = """async (kind) => {
  const { reloadGuard } = await import('/static/js/ui/sw-update.js');
  const banner = document.createElement('div');
  banner.innerHTML = '<p>A new version is ready. Your unfinished note is kept.</p>';
  const keep = {
    kept: async () => true,
    refused: async () => false,
    failing: async () => { throw new DOMException('The quota has been exceeded.', 'QuotaExceededError'); },
    hanging: () => new Promise(() => {}),
  }[kind];
  const mayReload = reloadGuard(banner, keep);
  const first = await mayReload();
  const said = banner.querySelector('p').textContent;
  return {first, said, second: await mayReload()};
}"""


def test_a_kept_note_reloads_at_the_first_tap(js_page: Any) -> None:
    out = js_page.evaluate(TAPS, "kept")
    assert out == {"first": True, "said": "A new version is ready. Your unfinished note is kept.", "second": True}


@pytest.mark.parametrize("kind", ["refused", "failing", "hanging"])
def test_a_note_not_kept_is_said_before_the_page_goes(js_page: Any, kind: str) -> None:
    out = js_page.evaluate(TAPS, kind)
    assert out["first"] is False and out["second"] is True
    assert "could not be saved" in out["said"] and "write its words down" in out["said"]
