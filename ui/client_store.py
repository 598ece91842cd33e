"""Browser records on Redis (where the host sets VAE_LAB_QUEUE): every app process on that Redis serves every browser,
so a browser that reconnects to another replica finds its form, its job and what it already loaded.

The same interface as ui/session.py's ClientRegistry and ClientRecord; each field is written through to Redis when
it changes. A record's key is a one-way hash of the browser's secret (the secret itself is not a key name), and it
expires when the browser stays away as long as the in-memory registry would forget it.
"""
from __future__ import annotations

import hashlib
import pickle
import time
from typing import Any, Iterable

import redis

PREFIX = "vae-lab:client"
CLIENT_TTL_S = 7 * 86_400  # a browser unseen for a week is forgotten
FIELDS = ("job_token", "images", "vectors", "last_seen")  # ClientRecord's single values (form and adopted are collections)


def client_key(token: str) -> str:
    return f"{PREFIX}:{hashlib.sha256(token.encode()).hexdigest()[:32]}"


class StoredForm(dict):
    """The Train form's remembered values (widget key -> value), read once per access; update() writes through."""

    def __init__(self, client: redis.Redis, key: str):
        super().__init__({k.decode(): pickle.loads(v) for k, v in client.hgetall(key).items()})
        self._client, self._key = client, key

    def update(self, values: dict[str, Any] = (), **more: Any) -> None:  # type: ignore[override]
        values = {**dict(values), **more}
        super().update(values)
        if values:
            self._client.hset(self._key, mapping={k: pickle.dumps(v) for k, v in values.items()})
            self._client.expire(self._key, CLIENT_TTL_S)


class StoredSet(set):
    """Job tokens whose runs were already loaded; add() writes through."""

    def __init__(self, client: redis.Redis, key: str):
        super().__init__(t.decode() for t in client.smembers(key))
        self._client, self._key = client, key

    def add(self, token: str) -> None:
        super().add(token)
        self._client.sadd(self._key, token)
        self._client.expire(self._key, CLIENT_TTL_S)


class StoredRecord:
    """One browser's record (ClientRecord's fields) on Redis."""

    def __init__(self, client: redis.Redis, key: str):
        object.__setattr__(self, "_client", client)
        object.__setattr__(self, "_key", key)

    @property
    def form(self) -> StoredForm:
        return StoredForm(self._client, f"{self._key}:form")

    @property
    def adopted(self) -> StoredSet:
        return StoredSet(self._client, f"{self._key}:adopted")

    def __getattr__(self, name: str) -> Any:  # only for FIELDS: pickled values in the record's hash
        if name not in FIELDS:
            raise AttributeError(name)
        raw = self._client.hget(self._key, name)
        return pickle.loads(raw) if raw is not None else None

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in FIELDS:
            raise AttributeError(f"a browser's record has no field {name!r}")
        self._client.hset(self._key, name, pickle.dumps(value))

    def touch(self, keys: Iterable[str] = ("", ":form", ":adopted")) -> None:
        pipe = self._client.pipeline(transaction=False)
        pipe.hset(self._key, "last_seen", pickle.dumps(time.time()))
        for suffix in keys:
            pipe.expire(f"{self._key}{suffix}", CLIENT_TTL_S)
        pipe.execute()


class RedisClientRegistry:
    """Token -> the browser's record on Redis, for every app process on it."""

    def __init__(self, client: redis.Redis):
        self._client = client

    def get(self, token: str) -> StoredRecord:
        record = StoredRecord(self._client, client_key(token))
        record.touch()
        return record


def connect_registry(url: str) -> RedisClientRegistry:
    """The registry on the Redis at url (QueueUnavailable, a ValueError, says what to check where it is down)."""
    from vae_core.jobs.redis_queue import connect_redis

    return RedisClientRegistry(connect_redis(url))
