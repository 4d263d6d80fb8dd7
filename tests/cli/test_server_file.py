"""server.toml: every serve option as a key, the command line winning, secrets never in
clear, one-line errors naming the key; --print-config; the files that hold secrets."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest

from chatroom.cli import build_parser, main
from chatroom.cli.common import Exit
from chatroom.cli.server_file import read_secret_file, settings_in_effect


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_the_file_sets_options_and_the_command_line_wins(tmp_path):
    conf = write(tmp_path / "server.toml", 'rate = 10\nmax_text = 50\nweb_host = ["chat.example"]\nannounce = false\n'
                                           'max_file_size = "20M"\nmetrics_from = ["127.0.0.2", "127.0.8.0/24"]\n')
    settings = settings_in_effect(build_parser(), ["serve", "--config", str(conf), "--rate", "3"])
    args = settings.args
    assert (args.rate, args.max_text, args.web_host, args.announce) == (3.0, 50, ["chat.example"], False)
    assert args.max_file_size == 20 << 20  # through the option's own type, as on the command line
    assert args.metrics_from == ["127.0.0.2/32", "127.0.8.0/24"]
    assert args.port == 7373  # untouched: the default
    assert "max_text" in settings.from_file and "rate" in settings.from_command_line
    assert "rate" not in settings.from_file


def test_a_flag_the_file_turned_on_can_be_turned_off_on_the_command_line(tmp_path):
    conf = write(tmp_path / "server.toml", "tls = true\n")
    args = settings_in_effect(build_parser(), ["serve", "--config", str(conf), "--no-tls"]).args
    assert args.tls is False


def test_the_default_file_lives_in_the_platform_config_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    (tmp_path / "chatroom").mkdir()
    write(tmp_path / "chatroom" / "server.toml", "max_clients = 12\n")
    settings = settings_in_effect(build_parser(), ["serve"])
    assert settings.args.max_clients == 12
    assert settings.path == tmp_path / "chatroom" / "server.toml"


def test_no_file_is_fine_but_a_named_file_must_exist(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert settings_in_effect(build_parser(), ["serve"]).path is None
    assert main(["serve", "--config", str(tmp_path / "missing.toml")]) == 2
    assert "missing.toml: no such file" in capsys.readouterr().err


def test_the_command_line_choice_of_store_beats_the_files(tmp_path):
    conf = write(tmp_path / "server.toml", "memory = true\n")
    args = settings_in_effect(build_parser(), ["serve", "--config", str(conf), "--data-dir", str(tmp_path)]).args
    assert (args.memory, args.data_dir) == (False, str(tmp_path))


@pytest.mark.parametrize(("text", "says"), [
    ("prot = 1\n", "unknown setting 'prot' (known: announce,"),
    ("port = \"high\"\n", "port: 'high': must be a whole number"),
    ("port = -1\n", "port: -1: must not be negative"),
    ("keep_days = \"soon\"\n", "keep_days: 'soon': must be a number"),
    ("rate = true\n", "rate must be a number"),
    ("tls = \"yes\"\n", "tls must be true or false"),
    ("sync = \"sometimes\"\n", "sync must be one of normal, full"),
    ("name = 3\n", "name must be a string"),
    ("web_host = [1]\n", "web_host must be a list of non-empty strings"),
    ("max_file_size = \"lots\"\n", "max_file_size: 'lots': 'lots' is not a size"),
    ("password = \"hunter2\"\n", "password: a secret never goes in this file in clear"),
    ("op_password = \"hunter2\"\n", "op_password: a secret never goes in this file in clear"),
    ("cluster = \"redis://:hunter2@127.0.0.1:6379/0\"\n", "cluster: a Redis URL with a password stays out"),
    ("memory = true\ndata_dir = \"/srv/chat\"\n", "data_dir and memory both say where history lives"),
    ("port = [\n", "not valid TOML"),
])
def test_a_bad_file_gets_one_line_naming_the_file_and_the_key(tmp_path, capsys, text, says):
    conf = write(tmp_path / "server.toml", text)
    assert main(["serve", "--config", str(conf)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"chatroom: {conf}: "), err
    assert says in err, err
    assert "hunter2" not in err and "Traceback" not in err


def test_print_config_shows_where_each_setting_came_from_and_masks_secrets(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CHATROOM_CLUSTER", "redis://:hunter2@127.0.0.1:1/0")
    secret = write(tmp_path / "password", "open sesame\n")
    conf = write(tmp_path / "server.toml", f'password_file = "{secret}"\nrate = 8\n')
    assert main(["serve", "--config", str(conf), "--print-config", "--max-text", "99"]) == 0
    out = capsys.readouterr().out
    lines = {line.split(" = ")[0]: line for line in out.splitlines() if " = " in line and not line.startswith("#")}
    assert lines["rate"].startswith("rate = 8.0") and lines["rate"].endswith("# file")
    assert lines["max_text"].startswith("max_text = 99") and lines["max_text"].endswith("# command line")
    assert lines["max_clients"].endswith("# default")
    assert lines["cluster"].endswith("# $CHATROOM_CLUSTER") and "127.0.0.1:1" in lines["cluster"]
    assert f'password_file = "{secret}"' in out
    assert "hunter2" not in out and "open sesame" not in out  # (and the file is never read for this)
    assert f"file: {conf}" in out.splitlines()[0]


def test_print_config_names_the_data_directory_in_effect(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("CHATROOM_CLUSTER", raising=False)
    assert main(["serve", "--print-config"]) == 0
    out = capsys.readouterr().out
    assert f'data_dir = "{tmp_path / "data" / "chatroom"}"' in out
    assert "does not exist" in out.splitlines()[0]


def test_a_secret_file_must_be_readable_by_its_owner_only(tmp_path):
    path = write(tmp_path / "password", "open sesame\nsecond line ignored\n")
    os.chmod(path, 0o644)
    with pytest.raises(Exit, match="others can read this room password file .*chmod 600"):
        read_secret_file(str(path), "room password")
    os.chmod(path, 0o600)
    assert read_secret_file(str(path), "room password") == "open sesame"
    empty = write(tmp_path / "empty", "\n")
    os.chmod(empty, 0o600)
    with pytest.raises(Exit, match="is empty"):
        read_secret_file(str(empty), "operator token")
    with pytest.raises(Exit, match="cannot read the operator token"):
        read_secret_file(str(tmp_path / "absent"), "operator token")


def test_the_readmes_example_file_is_a_file_the_server_takes(tmp_path):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    example = readme.split("### Host a room", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]
    conf = write(tmp_path / "server.toml", example)
    args = settings_in_effect(build_parser(), ["serve", "--config", str(conf)]).args
    written = tomllib.loads(example)
    assert (args.host, args.tls, args.keep_days, args.log_format) == (written["host"], True, 120.0, "json")
