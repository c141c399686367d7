"""The providers file is checked at the start: every mistake stops the facility with the file
and the reason, never a sign-in later."""

from __future__ import annotations

from pathlib import Path

import pytest

from aifactory.services.federated.providers import ProvidersError, load_providers

ROOT = Path(__file__).resolve().parents[3]
GOOD = """
[[provider]]
name = "surf"
label = "SURFconext"
issuer = "https://connect.surfconext.nl"
client_id = "portal"
client_secret_file = "{secret}"
"""


def write(tmp_path: Path, text: str) -> Path:
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    path = tmp_path / "providers.toml"
    path.write_text(text.replace("{secret}", str(secret)))
    return path


def test_the_demo_file_shipped_for_the_readme_loads() -> None:
    (demo,) = load_providers(ROOT / "oidc-provider" / "facility.toml")
    assert (demo.name, demo.cli_client_id) == ("demo", "aifactory-cli")
    assert demo.rules()[0].pattern.fullmatch(
        "urn:mace:surf.nl:aifactory:project:climate-llm:member"
    )


def test_a_good_file_loads_with_its_secret_from_a_file(tmp_path: Path) -> None:
    (surf,) = load_providers(write(tmp_path, GOOD))
    assert surf.secret() == "s3cret"
    assert surf.scopes == ["openid", "profile", "email"]
    assert surf.approval == "automatic"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (("https://connect", "http://connect"), "https://"),
        (('name = "surf"', 'name = "Surf!"'), "name"),
        (('client_id = "portal"', 'client_id = "portal"\nclient_secret = "x"'), "exactly one"),
        (('client_id = "portal"', 'client_id = "portal"\nscopes = ["profile"]'), "openid"),
        (('client_id = "portal"', 'client_id = "portal"\ncolour = "red"'), "colour"),
        (('client_id = "portal"', 'client_id = "portal"\napproval = "maybe"'), "approval"),
        (("[[provider]]", "[[provider]"), "providers.toml"),
        (
            (
                'client_secret_file = "{secret}"',
                'client_secret_file = "{secret}"\n[[provider.entitlements]]\nmatch = "("',
            ),
            "regular expression",
        ),
        (
            (
                'client_secret_file = "{secret}"',
                'client_secret_file = "{secret}"\n[[provider.entitlements]]\nmatch = "x"',
            ),
            "project",
        ),
    ],
)
def test_a_mistake_names_the_file_and_the_reason(
    tmp_path: Path, change: tuple[str, str], reason: str
) -> None:
    path = write(tmp_path, GOOD.replace(*change))
    with pytest.raises(ProvidersError, match=reason) as refused:
        load_providers(path)
    assert str(path) in str(refused.value)


def test_two_providers_of_one_name_or_an_unreadable_secret_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ProvidersError, match="same name"):
        load_providers(write(tmp_path, GOOD + GOOD))
    path = write(tmp_path, GOOD)
    (tmp_path / "secret").unlink()
    with pytest.raises(ProvidersError, match="secret"):
        load_providers(path)


def test_plain_http_is_for_loopback_only(tmp_path: Path) -> None:
    local = GOOD.replace("https://connect.surfconext.nl", "http://127.0.0.1:9000")
    with pytest.raises(ProvidersError, match="loopback"):
        load_providers(write(tmp_path, local))
    (loaded,) = load_providers(write(tmp_path, local + "allow_http = true\n"))
    assert loaded.allow_http
    remote = GOOD.replace("https://connect", "http://connect") + "allow_http = true\n"
    with pytest.raises(ProvidersError, match="loopback"):
        load_providers(write(tmp_path, remote))
