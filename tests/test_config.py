"""Settings that are checked as the facility starts: a wrong value is named, never guessed."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from aifactory.config import Settings, port_range


def test_a_relay_port_range_is_one_port_or_first_to_last() -> None:
    assert port_range("42000-42099") == (42000, 42099)
    assert port_range("43000") == (43000, 43000)
    for wrong in ("42099-42000", "80-90", "42000-70000"):
        with pytest.raises(ValueError, match="is not a range of ports"):
            port_range(wrong)


def test_settings_refuse_a_range_that_is_none() -> None:
    assert Settings(slurm_relay_ports="42000-42010").slurm_relay_ports == "42000-42010"
    with pytest.raises(ValidationError, match="slurm_relay_ports"):
        Settings(slurm_relay_ports="42010-42000")
    with pytest.raises(ValidationError, match="slurm_relay_ports"):
        Settings(slurm_relay_ports="ports")


def test_the_relays_one_peer_is_an_address() -> None:
    assert Settings(slurm_relay_from="10.1.0.5").slurm_relay_from == "10.1.0.5/32"
    with pytest.raises(ValidationError, match="slurm_relay_from"):
        Settings(slurm_relay_from="control-plane")
    with pytest.raises(ValidationError, match="IPv4"):  # socat's relay listens on IPv4
        Settings(slurm_relay_from="fd00::5")
