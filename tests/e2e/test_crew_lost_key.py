"""A tablet whose registration is there but whose signing key is not (a
backup restored to another iPad cannot unwrap it, say): it is set up again
when the crew signs in, instead of refusing every note as "the tablet's key
is missing" with no way to set it up from the app."""
from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.harness import (
    LiveServer,
    device_id,
    fill_minimal,
    poll,
    sign_in,
    submit,
    wait_enrolled,
    wait_states,
)

pytestmark = pytest.mark.e2e

DROP_SIGNING_KEY = """async () => {
  const { db } = await import('/static/js/store.js');
  await (await db()).delete('keys', 'signing');
}"""


def test_a_tablet_that_lost_its_signing_key_is_set_up_again(page: Any, server: LiveServer) -> None:
    sign_in(page, server)
    wait_enrolled(page)
    old = device_id(page)
    page.evaluate(DROP_SIGNING_KEY)
    page.reload()
    state = poll(page, "() => document.querySelector('#device-status')?.dataset.state",
                 lambda s: s in ("signed-out", "enrolled"), message="the set-up state after the reload")
    if state == "signed-out":  # the crew's session ended after the first set-up: sign in again
        sign_in(page, server)
    wait_enrolled(page)
    assert device_id(page) != old
    fill_minimal(page, "Sent after setting the tablet up again.")
    submit(page, 1)
    wait_states(page, "delivered", 1)


def test_a_revoked_tablet_is_said_so_even_when_its_key_cannot_be_read(page: Any, server: LiveServer) -> None:
    """The revoked notice comes from the registration alone: a key store the
    browser cannot read must not turn it into "storage unavailable"."""
    sign_in(page, server)
    wait_enrolled(page)
    page.evaluate("""async (id) => (await import('/static/js/device.js')).markRevoked('revoked_device', 'Revoked.', id)""",
                  device_id(page))
    page.add_init_script("""{
      const get = IDBObjectStore.prototype.get;
      IDBObjectStore.prototype.get = function (...args) {
        if (this.name === 'keys') throw new DOMException('The key cannot be read.', 'UnknownError');
        return get.apply(this, args);
      };
    }""")
    page.reload()
    poll(page, "() => document.querySelector('#device-status')?.dataset.state", lambda s: s == "revoked",
         message="shown as revoked")
