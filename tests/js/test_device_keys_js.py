"""device.js refreshKeys with two suites: the tablet keeps Border Force's and
its airline's key of each suite (v1 P-256, v2 X-Wing), checks every kid
against its thumbprint, and ignores keys of other owners or unknown suites."""
from __future__ import annotations

from typing import Any

import pytest

from crewreport import envelope
from tests.helpers import VECTORS, VECTORS_V2

pytestmark = pytest.mark.e2e


def entry(keys: dict[str, Any], name: str, suite: str, owner: str) -> dict[str, Any]:
    jwk = {k: v for k, v in keys[name]["jwk"].items() if k != "d"}
    return {"kid": keys[name]["kid"], "owner": owner, "suite": suite, "jwk": jwk}


BF1 = entry(VECTORS["keys"], "border_force", "v1", "border_force")
ZZ1 = entry(VECTORS["keys"], "airline_ZZ", "v1", "airline:ZZ")
BF2 = entry(VECTORS_V2["keys"], "border_force", "v2", "border_force")
ZZ2 = entry(VECTORS_V2["keys"], "airline_ZZ", "v2", "airline:ZZ")
# Any P-256 public key will do as the receipt key here.
_RECEIPT_JWK = envelope.public_jwk_members(VECTORS["keys"]["device"]["jwk"])
RECEIPT = {"kid": envelope.thumbprint(_RECEIPT_JWK), "jwk": _RECEIPT_JWK}
YY2 = entry(VECTORS_V2["keys"], "airline_ZZ", "v2", "airline:YY")  # another airline's: not ours to use

REFRESH = """async ([held, published, receipt]) => {
  const { withDb } = await import('/static/js/store.js');
  const m = await import('/static/js/device.js');
  const { sealingKeys } = await import('/static/js/envelope.js');
  await withDb((d) => d.put('meta', {device_id: 'dev-keys', airline: 'ZZ', recipients: held,
                                    receipt_key: {kid: receipt.kid, jwk: receipt.jwk}}, 'device'));
  const fetchFn = async () => new Response(JSON.stringify({...published, receipt_key: receipt}), {status: 200});
  await m.refreshKeys(fetchFn);
  const dev = await m.getDevice();
  await withDb((d) => d.delete('meta', 'device'));
  const chosen = sealingKeys(dev.recipients);
  return {held: dev.recipients.map(r => [r.owner, r.suite, r.kid]), version: chosen.version};
}"""


def test_a_tablet_that_learns_x_wing_keys_seals_version_2(js_page: Any) -> None:
    legacy = [{k: v for k, v in r.items() if k != "suite"} for r in (BF1, ZZ1)]  # a record from before suites
    out = js_page.evaluate(REFRESH, [legacy, {"recipients": [BF1, ZZ1, BF2, YY2, ZZ2]}, RECEIPT])
    assert out["held"] == [["border_force", "v1", BF1["kid"]], ["airline:ZZ", "v1", ZZ1["kid"]],
                           ["border_force", "v2", BF2["kid"]], ["airline:ZZ", "v2", ZZ2["kid"]]]
    assert out["version"] == 2


def test_keys_whose_kid_is_not_their_thumbprint_are_not_taken(js_page: Any) -> None:
    forged = {**ZZ2, "kid": BF2["kid"]}
    out = js_page.evaluate(REFRESH, [[BF1, ZZ1], {"recipients": [BF1, ZZ1, BF2, forged]}, RECEIPT])
    assert out["held"] == [["border_force", "v1", BF1["kid"]], ["airline:ZZ", "v1", ZZ1["kid"]]]
    assert out["version"] == 1


def test_v1_keys_no_longer_published_leave_the_tablet_on_version_2(js_page: Any) -> None:
    out = js_page.evaluate(REFRESH, [[BF1, ZZ1, BF2, ZZ2], {"recipients": [BF2, ZZ2, {**BF1, "suite": "v3"}]}, RECEIPT])
    assert out["held"] == [["border_force", "v2", BF2["kid"]], ["airline:ZZ", "v2", ZZ2["kid"]]]
    assert out["version"] == 2
