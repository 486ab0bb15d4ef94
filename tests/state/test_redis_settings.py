"""The Redis settings: three topologies, TLS files, one line naming the variable for a bad
combination, and the password in no message."""

from __future__ import annotations

import pytest

from ielts_service.config import ConfigError, load_settings

PASSWORD = "redis-pass-31c9"
URL = f"redis://:{PASSWORD}@127.0.0.1:6379/0"
TLS_URL = URL.replace("redis://", "rediss://")


@pytest.fixture
def ca_file(tmp_path):
    path = tmp_path / "ca.crt"
    path.write_text("not checked until a connection is made\n")
    return str(path)


@pytest.mark.parametrize(("env", "variable"), [
    ({"REDIS_MODE": "cluster"}, "REDIS_URL"),
    ({"REDIS_MODE": "sentinel"}, "REDIS_URL"),
    ({"REDIS_MODE": "replicated", "REDIS_URL": URL}, "REDIS_MODE"),
    ({"REDIS_URL": URL, "REDIS_MODE": "sentinel", "REDIS_SENTINEL_MASTER": "m"},
     "REDIS_SENTINELS"),
    ({"REDIS_URL": URL, "REDIS_MODE": "sentinel", "REDIS_SENTINELS": "h:26379"},
     "REDIS_SENTINEL_MASTER"),
    ({"REDIS_URL": URL, "REDIS_MODE": "sentinel", "REDIS_SENTINELS": "h:26379,h2",
      "REDIS_SENTINEL_MASTER": "m"}, "REDIS_SENTINELS"),
    ({"REDIS_URL": URL, "REDIS_SENTINELS": "h:26379"}, "REDIS_SENTINELS"),
    ({"REDIS_URL": URL, "REDIS_SENTINEL_MASTER": "m"}, "REDIS_SENTINEL_MASTER"),
    ({"REDIS_URL": URL.replace("/0", "/3"), "REDIS_MODE": "cluster"}, "REDIS_URL"),
    ({"REDIS_URL": f"http://:{PASSWORD}@h:6379/0"}, "REDIS_URL"),
    ({"REDIS_URL": f"unix:///tmp/redis.sock?password={PASSWORD}", "REDIS_MODE": "cluster"},
     "REDIS_URL"),
    ({"REDIS_URL": f"redis://:{PASSWORD}@h:port/0"}, "REDIS_URL"),
    ({"REDIS_URL": URL, "REDIS_CA_FILE": "{ca}"}, "REDIS_CA_FILE"),
    ({"REDIS_URL": TLS_URL, "REDIS_CA_FILE": "/nonexistent/ca.crt"}, "REDIS_CA_FILE"),
    ({"REDIS_URL": TLS_URL, "REDIS_CERT_FILE": "{ca}"}, "REDIS_KEY_FILE"),
    ({"REDIS_URL": TLS_URL, "REDIS_KEY_FILE": "{ca}"}, "REDIS_CERT_FILE"),
    ({"REDIS_CA_FILE": "{ca}"}, "REDIS_CA_FILE"),
])
def test_a_bad_combination_is_one_line_naming_the_variable(env, variable, ca_file):
    env = {k: v.replace("{ca}", ca_file) for k, v in env.items()}
    with pytest.raises(ConfigError) as caught:
        load_settings(env, env_file=None)
    message = str(caught.value)
    assert message.startswith(variable) and "\n" not in message and PASSWORD not in message


def test_the_three_topologies_and_tls_are_accepted(ca_file):
    cluster = load_settings({"REDIS_URL": URL, "REDIS_MODE": "cluster"}, env_file=None)
    sentinel = load_settings({"REDIS_URL": "redis://:pw@ielts/1", "REDIS_MODE": "sentinel",
                              "REDIS_SENTINELS": "10.0.0.1:26379, [::1]:26380",
                              "REDIS_SENTINEL_MASTER": "ielts"}, env_file=None)
    tls = load_settings({"REDIS_URL": TLS_URL, "REDIS_CA_FILE": ca_file,
                         "REDIS_CERT_FILE": ca_file, "REDIS_KEY_FILE": ca_file}, env_file=None)
    assert cluster.redis_mode == "cluster"
    assert sentinel.redis_sentinels == (("10.0.0.1", 26379), ("::1", 26380))
    assert str(tls.redis_ca_file) == ca_file
    assert load_settings({"REDIS_URL": URL}, env_file=None).redis_mode == "standalone"


def test_the_password_is_a_secret_even_percent_encoded():
    settings = load_settings({"REDIS_URL": "redis://user:p%40ss-w0rd-9@h:6379/0"},
                             env_file=None)
    assert {"p%40ss-w0rd-9", "p@ss-w0rd-9"} <= set(settings.secret_values())
    assert "w0rd" not in repr(settings)
