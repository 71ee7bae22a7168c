"""A bounded load of concurrent reads and writes on a few items, every read checked.

Writers make a fixed number of writes each; readers read round the items until the
writers are done, then each reads every item once more, so every load ends with
reads sent after its last write was acknowledged. bench.consistency.History judges
each read: the newest acknowledged version is taken before the read is sent.
"""

import http.client
import itertools
import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from bench.consistency import History

Read = Callable[[int], int | None]  # item id -> the version served, None for a 404
Write = Callable[[int, int], int]  # item id, quantity -> the version the answer carried


def run_load(
    read: Read,
    write: Write,
    ids: list[int],
    *,
    readers: int = 8,
    writers: int = 2,
    writes_per_writer: int = 100,
) -> History:
    history = History()
    writing_done = threading.Event()

    def check(item_id: int) -> None:
        newest = history.newest(item_id)
        history.served(item_id, newest, read(item_id))

    def reader(first: int) -> None:
        for item_id in itertools.islice(itertools.cycle(ids), first, None):
            if writing_done.is_set():
                break
            check(item_id)
        for item_id in ids:
            check(item_id)

    def writer(number: int) -> None:
        for count in range(writes_per_writer):
            item_id = ids[(number + count) % len(ids)]
            quantity = number * writes_per_writer + count
            history.acknowledged(item_id, write(item_id, quantity), {"quantity": quantity})

    with ThreadPoolExecutor(readers + writers) as pool:
        reading = [pool.submit(reader, number) for number in range(readers)]
        try:
            for done in [pool.submit(writer, number) for number in range(writers)]:
                done.result()  # a writer's failure is the load's
        finally:
            writing_done.set()
        for done in reading:
            done.result()
    return history


class HttpItems:
    """Reads from one path, writes through the API's PATCH with a token.

    One keep-alive connection per thread, as a client pool would hold.
    """

    def __init__(self, base_url: str, read_path: str, token: str):
        self.address = urlsplit(base_url).netloc
        self.read_path = read_path
        self.token = token
        self._local = threading.local()

    def read(self, item_id: int) -> int | None:
        status, body = self._request("GET", f"{self.read_path}{item_id}/")
        if status == 404:
            return None
        if status != 200:
            raise RuntimeError(f"GET {self.read_path}{item_id}/ answered {status}: {body[:200]}")
        return json.loads(body)["version"]

    def write(self, item_id: int, quantity: int) -> int:
        """PATCH the quantity; the version the answer carries.

        An odd quantity's write (every other one of each writer) carries `If-Match: *`,
        so it runs in the transaction that holds the row lock (items.conditional), where
        `post_save` comes before the commit; the others are a single `UPDATE`, where it
        comes after. A cache is judged under both.
        """
        path = f"/api/items/{item_id}/"
        headers = {"Authorization": f"Token {self.token}", "Content-Type": "application/json"}
        if quantity % 2:
            headers["If-Match"] = "*"
        status, body = self._request("PATCH", path, json.dumps({"quantity": quantity}), headers)
        if status != 200:
            raise RuntimeError(f"PATCH {path} answered {status}: {body[:200]}")
        return json.loads(body)["version"]

    def _request(self, method: str, path: str, body=None, headers=None) -> tuple[int, bytes]:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection(self.address, timeout=30)
            self._local.connection = connection
        connection.request(method, path, body, headers or {})
        response = connection.getresponse()
        return response.status, response.read()
