"""The host's settings: one table (host.SETTINGS) read by HostSettings and shown in the README."""
from pathlib import Path

import pytest

from vae_core.host import SETTINGS, HostSettingError, HostSettings, settings_table

README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_readme_shows_the_hosts_own_table():
    assert settings_table() in README.read_text()


def test_every_setting_sets_one_field_and_unset_means_its_default():
    found = HostSettings.from_env({})
    assert sorted(s.field for s in SETTINGS) == sorted(vars(found))
    assert (found.max_queue, found.job_time_cap_s, found.max_upload_mb, found.image_folders) == (64, 600.0, 200, ())
    assert found.runs_dir == Path("runs") and found.max_jobs >= 1


@pytest.mark.parametrize("name, raw, words", [("VAE_LAB_MAX_JOBS", "0", "out of range; it must be from 1 to 256"),
                                              ("VAE_LAB_MAX_QUEUE", "many", "is not an integer"),
                                              ("VAE_LAB_JOB_TIME_CAP_S", "nan", "out of range")])
def test_a_bad_value_is_refused_naming_the_variable(name, raw, words):
    with pytest.raises(HostSettingError, match=f"{name}.*{words}"):
        HostSettings.from_env({name: raw})


def test_set_values_are_read_and_blank_counts_as_unset():
    found = HostSettings.from_env({"VAE_LAB_MAX_JOBS": "3", "VAE_LAB_ALLOW_DOWNLOAD": "1", "VAE_LAB_RUNS": " ",
                                   "VAE_LAB_IMAGE_FOLDERS": "/srv/a:/srv/b"})
    assert (found.max_jobs, found.allow_download, found.runs_dir) == (3, True, Path("runs"))
    assert found.image_folders == (Path("/srv/a"), Path("/srv/b"))
