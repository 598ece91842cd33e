"""A browser's private space: named by its token's hash, 0700, bounded copies, nothing escapes it, and it
expires after the stated time unless a job trains on it."""
from __future__ import annotations

import io
import os
import stat

import pytest

from vae_core.host import HostSettingError, HostSettings
from vae_core.data.images.private import UPLOADS_KEPT, PrivateSpace, delete_expired, save_for_everyone
from vae_core.data.images.source import MB, UploadLimits, UploadRefused


def test_a_space_is_private_and_named_by_a_hash_of_the_token(tmp_path):
    space = PrivateSpace.of(tmp_path / "uploads", "alice-secret-token")
    path = space.save_upload(io.BytesIO(b"PK" * 100), UploadLimits())
    assert "alice" not in str(path) and path.parent == space.root and path.read_bytes() == b"PK" * 100
    for folder in (space.root, space.root.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    again = space.save_upload(io.BytesIO(b"PK" * 100), UploadLimits())
    assert again == path and space.uploads() == [path]  # the same file, the same name
    other = space.save_upload(io.BytesIO(b"other"), UploadLimits())
    assert space.uploads() == [other, path]  # the newest first
    more = [space.save_upload(io.BytesIO(f"more {k}".encode()), UploadLimits()) for k in range(UPLOADS_KEPT)]
    assert space.uploads() == more[::-1]  # the oldest go: one browser cannot fill the disk
    assert PrivateSpace.of(tmp_path / "uploads", "bob-token").root != space.root


def test_an_upload_past_the_limit_is_refused_and_leaves_nothing(tmp_path):
    space = PrivateSpace.of(tmp_path, "tok")
    with pytest.raises(UploadRefused, match="larger than 1 MB"):
        space.save_upload(io.BytesIO(b"x" * (MB + 1)), UploadLimits(upload_bytes=MB))
    assert [p.name for p in space.root.iterdir()] == [".last-used"]


def test_holds_resolves_links_and_dot_dots(tmp_path):
    space = PrivateSpace.of(tmp_path / "uploads", "tok")
    space.save_upload(io.BytesIO(b"x"), UploadLimits())
    (space.root / "link").symlink_to("/etc")
    assert space.holds(space.root / "images-x.zip")
    assert not space.holds(space.root / ".." / "elsewhere.zip")
    assert not space.holds(space.root / "link" / "passwd")
    assert not PrivateSpace.of(tmp_path / "uploads", "other").holds(space.root / "images-x.zip")


def test_spaces_expire_after_the_stated_time_unless_busy(tmp_path):
    root = tmp_path / "uploads"
    old, busy, fresh = (PrivateSpace.of(root, t) for t in ("old", "busy", "fresh"))
    for space in (old, busy, fresh):
        space.save_upload(io.BytesIO(b"x"), UploadLimits())
    hours_ago = os.path.getmtime(fresh.root / ".last-used") - 3 * 3600
    for space in (old, busy):
        os.utime(space.root / ".last-used", (hours_ago, hours_ago))
    bystander = root / "not-a-space"  # the host's folder may hold other things (VAE_LAB_UPLOADS=/tmp)
    bystander.mkdir()
    os.utime(bystander, (hours_ago, hours_ago))
    gone = delete_expired(root, ttl_s=2 * 3600, busy=[busy])
    assert gone == [old.root] and not old.exists() and busy.exists() and fresh.exists() and bystander.exists()


def test_saving_for_everyone_moves_the_run_out(tmp_path):
    space = PrivateSpace.of(tmp_path / "uploads", "tok")
    run = space.runs_dir / "20260101-run"
    run.mkdir(parents=True)
    (run / "config.json").write_text("{}")
    target = save_for_everyone(run, tmp_path / "runs")
    assert (target / "config.json").exists() and not run.exists()
    run.mkdir()
    with pytest.raises(FileExistsError):
        save_for_everyone(run, tmp_path / "runs")


def test_the_host_settings_for_uploads(tmp_path):
    s = HostSettings.from_env({"VAE_LAB_UPLOADS": str(tmp_path), "VAE_LAB_IMAGE_FOLDERS": f"/a{os.pathsep}/b"})
    assert s.uploads_dir == tmp_path and s.image_folders == (tmp_path.__class__("/a"), tmp_path.__class__("/b"))
    assert s.max_upload_mb == UploadLimits().upload_bytes // MB and s.upload_ttl_s == 7200
    assert HostSettings.from_env({}).image_folders == ()  # off by default
    with pytest.raises(HostSettingError, match="VAE_LAB_UPLOAD_TTL_S"):
        HostSettings.from_env({"VAE_LAB_UPLOAD_TTL_S": "1"})
