"""Deleting a thread whose run is active: the run is cancelled (its stream ends with the
cancel's events and `done`, and the process driving it stops asking the model), and of
several deletes racing one wins while the others get 404."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import httpx

from tests.conftest import BETA, LiveServer
from tests.fake_backend import Reply

AUTH = {**BETA, "Authorization": "Bearer sk-test"}


def test_deleting_a_thread_cancels_its_streaming_run(
    live_server: LiveServer, script: list[Any]
) -> None:
    script.append(Reply(text="The first words of a long answer", stall_seconds=30))
    app = live_server.server.config.app
    with httpx.Client(base_url=live_server.url + "/v1", headers=AUTH, timeout=30) as http:
        assistant = http.post("/assistants", json={"model": "fake-model"}).json()
        thread = http.post("/threads", json={
            "messages": [{"role": "user", "content": "Go on"}]}).json()
        names: list[str] = []
        deleted: list[httpx.Response] = []
        deleting: list[threading.Thread] = []
        started = 0.0
        with http.stream("POST", f"/threads/{thread['id']}/runs", json={
                "assistant_id": assistant["id"], "stream": True}) as response:
            for line in response.iter_lines():
                if not line.startswith("event: "):
                    continue
                names.append(line[7:])
                if line == "event: thread.message.delta" and not deleting:
                    started = time.monotonic()  # the model is mid-answer: delete the thread
                    deleting.append(threading.Thread(target=lambda: deleted.append(
                        httpx.delete(f"{live_server.url}/v1/threads/{thread['id']}",
                                     headers=AUTH))))
                    deleting[0].start()
        assert time.monotonic() - started < 5  # not after the model's 30 s stall
        deleting[0].join(10)
    assert names[-3:] == ["thread.run.cancelling", "thread.run.cancelled", "done"]
    assert deleted[0].json() == {"id": thread["id"], "object": "thread.deleted",
                                 "deleted": True}
    deadline = time.monotonic() + 5
    while app.state.executor.tasks:  # its task stopped: the model is not asked on
        assert time.monotonic() < deadline, "the run's task still runs"
        time.sleep(0.05)


async def test_of_ten_deletes_at_once_one_wins(client: httpx.AsyncClient) -> None:
    thread = (await client.post("/v1/threads", json={
        "messages": [{"role": "user", "content": "hello"}]})).json()
    answers = await asyncio.gather(*(client.delete(f"/v1/threads/{thread['id']}")
                                     for _ in range(10)))
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200] + [404] * 9
    missing = next(a for a in answers if a.status_code == 404).json()["error"]
    assert missing["message"] == f"No thread found with id '{thread['id']}'."
