"""The client's settings file, aliases and window logs, with no terminal."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatroom.client.config import ClientConfig, ConfigError, load_config, parse_config
from chatroom.client.connection import ChatClient
from chatroom.client.controller import Controller
from chatroom.client.logs import WindowLogs, log_name
from chatroom.protocol import Chat, Joined, Private
from tests.polling import wait_until

EXAMPLE = '''
server = "127.0.0.1:7373"
nick = "ann"
rooms = ["lobby", "#dev"]
highlight = ["release"]
bell = "off"
timestamp = "%H:%M:%S"
theme = "light"
downloads = "~/Incoming"
input_history = false
log = false
notify = true

[aliases]
j = "join"
Wave = "/me waves"
'''


def test_every_setting_is_read_from_the_toml_file():
    c = parse_config(EXAMPLE)
    assert (c.server, c.nick, c.rooms, c.highlight) == ("127.0.0.1:7373", "ann", ("lobby", "#dev"), ("release",))
    assert (c.bell, c.timestamp, c.theme, c.input_history, c.log, c.notify) == ("off", "%H:%M:%S", "light",
                                                                                 False, False, True)
    assert c.downloads == Path("~/Incoming").expanduser() and c.aliases == {"j": "join", "wave": "me waves"}


def test_no_file_means_the_defaults(tmp_path):
    assert load_config() == ClientConfig()  # (the test's own, empty, config folder)


@pytest.mark.parametrize(("text", "says"), [
    ("nick = ", "not valid TOML"),
    ("colour = 'red'", "unknown setting 'colour'"),
    ("bell = 'loud'", "bell must be one of on, off, mentions"),
    ("theme = 'blue'", "theme must be one of dark, light"),
    ("rooms = 'lobby'", "rooms must be a list"),
    ("log = 'yes'", "log must be true or false"),
    ("[aliases]\njoin = 'nick'", "would hide the command /join"),
    ("[aliases]\nx = 'explode now'", "names no command (/explode)"),
])
def test_a_bad_setting_is_a_clear_error_naming_it(text, says):
    with pytest.raises(ConfigError) as info:
        parse_config(text, "client.toml")
    assert says in str(info.value) and str(info.value).startswith("client.toml: ")


def test_an_alias_runs_its_command_with_the_words_typed_after_it(server):
    client = ChatClient("127.0.0.1", server.port, "ann")
    client.connect()
    events: list[object] = []
    client.on_event = events.append
    shown: list[str] = []
    controller = Controller(client, show=lambda text, error: shown.append(text), quit=lambda why: None,
                            aliases=parse_config(EXAMPLE).aliases)
    controller.handle("/J dev")
    wait_until(lambda: any(isinstance(e, Joined) and e.room == "dev" for e in events), 10, "the alias to join")
    controller.handle("/wave hello")
    wait_until(lambda: any(isinstance(e, Chat) and e.action and e.text == "waves hello" for e in events), 10,
               "the alias with words after it")
    client.close()


def test_each_window_has_its_own_log_file_appended_across_runs(tmp_path):
    for run in range(2):
        logs = WindowLogs(tmp_path)
        logs.write("Class Server", "lobby", Chat(room="lobby", seq=run + 1, ts=0.0, nick="bob", text=f"run {run}"))
        logs.write("Class Server", "@bob", Private(nick="bob", to="ann", text="psst", ts=0.0))
        logs.close()
    lobby = (tmp_path / "class_server" / "lobby.log").read_text(encoding="utf-8").splitlines()
    assert [line.split("> ", 1)[1] for line in lobby] == ["run 0", "run 1"]
    assert "psst" in (tmp_path / "class_server" / "@bob.log").read_text(encoding="utf-8")
    for hostile in ("../../etc/passwd", "..", "a\\b", "/abs"):
        name = log_name(hostile)
        assert "/" not in name and "\\" not in name and not name.startswith(".") and name


def test_a_rooms_log_has_no_gap_after_a_reconnect_and_each_message_once(tmp_path):
    from chatroom.protocol import History

    def chat(seq: int) -> Chat:
        return Chat(room="lobby", seq=seq, ts=float(seq), nick="bob", text=f"m{seq}")

    logs = WindowLogs(tmp_path)
    for seq in (1, 2):
        logs.write("s", "lobby", chat(seq))
    # offline: 3 and 4 were said; the resume replays 2..4 (2 again), then 5 comes live
    logs.write("s", "lobby", History(room="lobby", messages=(chat(2), chat(3), chat(4)), replay=True))
    logs.write("s", "lobby", chat(4))  # shown twice (a race of replay and live): once in the log
    logs.write("s", "lobby", chat(5))
    logs.write("s", "lobby", History(room="lobby", messages=(chat(0),), replay=False))  # paging back: not logged
    logs.close()
    lines = (tmp_path / "s" / "lobby.log").read_text(encoding="utf-8").splitlines()
    assert [line.rsplit("> ", 1)[1] for line in lines] == ["m1", "m2", "m3", "m4", "m5"]


def test_set_checks_a_value_as_the_file_does_and_save_keeps_the_files_comments(tmp_path):
    from chatroom.client.config import (
        ConfigError,
        load_config,
        save_config,
        set_alias,
        set_binding,
        set_setting,
        setting_lines,
    )

    path = tmp_path / "client.toml"
    path.write_text('# my settings\nnick = "ann"  # at school\nbell = "on"\n\n[aliases]\nj = "join"\n',
                    encoding="utf-8")
    config = load_config(path)
    config = set_setting(config, "bell", "off")  # plain text is a string
    config = set_setting(config, "rooms", '["dev", "lobby"]')  # a TOML value
    config = set_setting(config, "notify", "true")
    assert (config.bell, config.rooms, config.notify) == ("off", ("dev", "lobby"), True)
    for key, value, why in (("bell", "loud", "bell must be one of"), ("notify", "maybe", "true or false"),
                            ("colour", "red", "no setting 'colour'"), ("aliases", "x", "no setting 'aliases'")):
        with pytest.raises(ConfigError, match=why):
            set_setting(config, key, value)
    config = set_alias(config, "wave", "me waves")
    config = set_binding(config, "F5", "join dev")
    with pytest.raises(ConfigError, match="cannot be bound"):
        set_binding(config, "ctrl-c", "quit")
    with pytest.raises(ConfigError, match="names no command"):
        set_binding(config, "f6", "frobnicate")
    assert "bell = \"off\"" in setting_lines(config) and "bind f5 = 'join dev'" in setting_lines(config)
    save_config(config, path)
    text = path.read_text(encoding="utf-8")
    assert "# my settings" in text and "# at school" in text  # the file's own words stay
    again = load_config(path)
    assert again == config
    config = set_setting(config, "bell", "mentions")  # back to the default: out of the file
    save_config(config, path)
    assert "bell" not in path.read_text(encoding="utf-8")


def test_a_named_settings_file_must_exist_and_times_and_folders_are_checked_at_start(tmp_path):
    from chatroom.client.config import ConfigError, load_config, parse_config

    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "nowhere.toml")
    for text, why in (('timestamp = "hh:mm"', "not a time format"), ('timestamp = "%"', "not a time format"),
                      (f'downloads = "{tmp_path / "f.txt"}"', "not a folder")):
        (tmp_path / "f.txt").write_text("x")
        with pytest.raises(ConfigError, match=why):
            parse_config(text)
    assert parse_config('timestamp = "%H:%M:%S"').timestamp == "%H:%M:%S"
