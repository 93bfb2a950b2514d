"""The HTTP side of the server: page, health, uploads, offers refused for bad input, tokens,
host and origin checks. No media flows here (see test_webrtc.py)."""

import asyncio

import aiohttp
import cv2
import numpy as np
import pytest

from engine.sample_media import read_sample_garment
from engine.serve.app import STATE, create_app
from engine.serve.upload import MAX_UPLOAD_BYTES
from tests.engine.serve.helpers import serving, tiny_session_factory

TOKEN = "s3cret-token-for-tests"


def run(body, timeout_s: float = 60):
    return asyncio.run(asyncio.wait_for(body, timeout_s))


def _png(rgba: np.ndarray) -> bytes:
    return cv2.imencode(".png", cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))[1].tobytes()


@pytest.fixture
def app(tmp_path):
    return create_app(tiny_session_factory(tmp_path), model="tiny", backend="torch")


def test_page_script_and_health(app):
    async def body():
        async with serving(app) as url, aiohttp.ClientSession() as http:
            async with http.get(url + "/") as r:
                page = (r.status, await r.text())
            async with http.get(url + "/static/app.js") as r:
                script = (r.status, await r.text())
            async with http.get(url + "/health") as r:
                health = await r.json()
        return page, script, health

    page, script, health = run(body())
    assert page[0] == 200 and "getUserMedia" not in page[1] and 'id="fps"' in page[1]
    assert "http" not in page[1].replace("http-equiv", "")  # nothing fetched from elsewhere
    assert script[0] == 200 and "getUserMedia" in script[1] and "RTCPeerConnection" in script[1]
    assert health == {"status": "ok", "backend": "torch", "model": "tiny", "sessions": 0,
                      "max_sessions": 2}  # fmt: skip


def test_uploads(app):
    async def body():
        async with serving(app) as url, aiohttp.ClientSession() as http:
            out = {}
            good = _png(read_sample_garment())
            async with http.post(url + "/garment", data=good) as r:
                out["good"] = (r.status, await r.json())
            async with http.post(url + "/garment", data=b"plain text, no image") as r:
                out["text"] = (r.status, await r.json())
            blank = np.full((64, 64, 4), 255, np.uint8)
            async with http.post(url + "/garment", data=_png(blank)) as r:
                out["blank"] = (r.status, await r.json())
            async with http.post(url + "/garment", data=bytes(MAX_UPLOAD_BYTES + 1)) as r:
                out["huge"] = (r.status, await r.json())

            async def chunks():  # no Content-Length: the streamed body is cut at the limit
                for _ in range(11):
                    yield bytes(1024 * 1024)

            async with http.post(url + "/garment", data=chunks()) as r:
                out["streamed"] = r.status
        return out

    out = run(body())
    assert out["good"][0] == 200 and len(out["good"][1]["id"]) == 16
    assert out["good"][1]["id"] in app[STATE].garments
    assert out["text"][0] == 400 and "PNG or JPEG" in out["text"][1]["error"]
    assert out["blank"][0] == 400 and "garment" in out["blank"][1]["error"]
    assert out["huge"][0] == 413 and out["streamed"] == 413


@pytest.mark.parametrize(
    "payload, fragment",
    [
        ({"sdp": "v=0\r\nthis is not sdp\r\n", "type": "offer"}, "sdp"),
        ({"sdp": "hello", "type": "offer"}, "sdp"),
        ({"sdp": "v=0\r\n", "type": "answer"}, "type"),
        ([1, 2], "body"),
        ("not json", "JSON"),
    ],
)
def test_malformed_offers_get_400_and_free_their_slot(app, payload, fragment):
    async def body():
        async with serving(app) as url, aiohttp.ClientSession() as http:
            if payload == "not json":
                kwargs = {"data": b"{not json", "headers": {"Content-Type": "application/json"}}
            else:
                kwargs = {"json": payload}
            async with http.post(url + "/offer", **kwargs) as r:
                reply = (r.status, await r.json())
            async with http.get(url + "/health") as r:
                return reply, (await r.json())["sessions"]

    (status, reply), sessions = run(body())
    assert status == 400 and fragment in reply["error"] and sessions == 0


def test_unknown_garment_is_refused(app):
    async def body():
        async with serving(app) as url, aiohttp.ClientSession() as http:
            offer = {"sdp": "v=0\r\n", "type": "offer", "garment": "nope"}
            async with http.post(url + "/offer", json=offer) as r:
                return r.status, await r.json()

    status, reply = run(body())
    assert status == 400 and "garment" in reply["error"]


def test_token_is_required_everywhere(tmp_path):
    app = create_app(tiny_session_factory(tmp_path), token=TOKEN)

    async def body():
        async with serving(app) as url, aiohttp.ClientSession() as http:
            got = {}
            for name, path, headers in [
                ("none", "/health", {}),
                ("wrong", "/health", {"X-Tryon-Token": "wrong-token-1234"}),
                ("page", "/", {}),
                ("offer", "/offer", {}),
                ("header", "/health", {"X-Tryon-Token": TOKEN}),
                ("bearer", "/health", {"Authorization": f"Bearer {TOKEN}"}),
                ("query", f"/health?token={TOKEN}", {}),
            ]:
                method = http.post if path == "/offer" else http.get
                async with method(url + path, headers=headers) as r:
                    got[name] = r.status
            async with http.get(url + "/garment", params={"token": "x" * 20}) as r:
                got["wrong_query"] = r.status
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as fresh:
                async with fresh.get(f"{url}/?token={TOKEN}") as r:
                    got["page_token"] = r.status
                async with fresh.get(url + "/static/app.js") as r:
                    got["script_cookie"] = r.status
        return got

    got = run(body())
    assert got == {"none": 401, "wrong": 401, "page": 401, "offer": 401, "header": 200,
                   "bearer": 200, "query": 200, "wrong_query": 401, "page_token": 200,
                   "script_cookie": 200}  # fmt: skip


def test_foreign_host_and_origin_are_refused_without_token(app):
    async def body():
        async with serving(app) as url, aiohttp.ClientSession() as http:
            async with http.get(url + "/health", headers={"Host": "evil.example"}) as r:
                host = r.status
            async with http.get(url + "/health", headers={"Origin": "http://evil.example"}) as r:
                origin = r.status
            async with http.get(url + "/health", headers={"Origin": url}) as r:
                same = r.status
        return host, origin, same

    assert run(body()) == (403, 403, 200)


def test_bad_arguments_raise_input_error():
    from engine.errors import InputError

    with pytest.raises(InputError, match="max_sessions"):
        create_app(max_sessions=0)
    with pytest.raises(InputError, match="token"):
        create_app(token="short")
