"""aiortc participant for the media node's interop test (run by tests/aiortc.rs).

  publish   BASE TOKEN SECONDS          -> prints {"sessionId": ...}, sends A/V for SECONDS
  subscribe BASE TOKEN PUB_SESSION SECS -> pulls audio+video, decodes, prints frame counts
"""

import asyncio
import json
import sys
import urllib.error
import urllib.request

import aioice.ice

# aioice skips loopback when gathering; the tests only ever use 127.0.0.1.
aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=False: ["127.0.0.1"]

from aiortc import (  # noqa: E402
    AudioStreamTrack,
    RTCPeerConnection,
    RTCSessionDescription,
    VideoStreamTrack,
)


def call(base, token, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        base + path,
        data=data,
        method=method,
        headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        raise SystemExit(f"{method} {path}: {e.code} {e.read().decode()}")


async def publish(base, token, seconds):
    pc = RTCPeerConnection()
    pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
    pc.addTransceiver(VideoStreamTrack(), direction="sendonly")
    sid = call(base, token, "POST", "/v1/sessions/new", {})["sessionId"]
    await pc.setLocalDescription(await pc.createOffer())
    tracks = [
        {"location": "local", "mid": t.mid, "trackName": t.kind}
        for t in pc.getTransceivers()
    ]
    r = call(
        base,
        token,
        "POST",
        f"/v1/sessions/{sid}/tracks/new",
        {"sessionDescription": {"type": "offer", "sdp": pc.localDescription.sdp}, "tracks": tracks},
    )
    await pc.setRemoteDescription(
        RTCSessionDescription(sdp=r["sessionDescription"]["sdp"], type="answer")
    )
    print(json.dumps({"sessionId": sid}), flush=True)
    await asyncio.sleep(seconds)
    await pc.close()


async def subscribe(base, token, pub_sid, seconds):
    pc = RTCPeerConnection()
    counts = {"video": 0, "audio": 0, "width": 0, "height": 0}

    @pc.on("track")
    def on_track(track):
        async def reader():
            while True:
                try:
                    frame = await track.recv()
                except Exception:
                    return
                counts[track.kind] += 1
                if track.kind == "video":
                    counts["width"], counts["height"] = frame.width, frame.height

        asyncio.ensure_future(reader())

    sid = call(base, token, "POST", "/v1/sessions/new", {})["sessionId"]
    r = call(
        base,
        token,
        "POST",
        f"/v1/sessions/{sid}/tracks/new",
        {
            "tracks": [
                {"location": "remote", "sessionId": pub_sid, "trackName": "audio"},
                {"location": "remote", "sessionId": pub_sid, "trackName": "video"},
            ]
        },
    )
    await pc.setRemoteDescription(
        RTCSessionDescription(sdp=r["sessionDescription"]["sdp"], type="offer")
    )
    await pc.setLocalDescription(await pc.createAnswer())
    call(
        base,
        token,
        "PUT",
        f"/v1/sessions/{sid}/renegotiate",
        {"sessionDescription": {"type": "answer", "sdp": pc.localDescription.sdp}},
    )
    loop = asyncio.get_event_loop()
    end = loop.time() + seconds
    while loop.time() < end and (counts["video"] < 30 or counts["audio"] < 50):
        await asyncio.sleep(0.1)
    print(json.dumps(counts), flush=True)
    await pc.close()


def main():
    role, base, token = sys.argv[1], sys.argv[2], sys.argv[3]
    if role == "publish":
        asyncio.run(publish(base, token, float(sys.argv[4])))
    else:
        asyncio.run(subscribe(base, token, sys.argv[4], float(sys.argv[5])))


if __name__ == "__main__":
    main()
