"""Configuration: validated at start-up, one clear line naming the variable, no secret printed."""

from __future__ import annotations

import pytest

from ielts_service.config import ConfigError, load_settings

KEY = "sk-live-7d1e0c4b9a"
AZURE = {"AZURE_OPENAI_ENDPOINT": "https://example.openai.azure.com",
         "AZURE_OPENAI_API_KEY": KEY, "AZURE_OPENAI_DEPLOYMENT": "gpt-4o"}


def test_no_keys_means_the_offline_bank():
    assert load_settings({}, env_file=None).ai_provider == "bank"


def test_azure_endpoint_and_key_mean_azure():
    settings = load_settings(AZURE, env_file=None)
    assert settings.ai_provider == "azure" and settings.model_name == "gpt-4o"


def test_openai_base_url_means_an_openai_compatible_server():
    settings = load_settings({"OPENAI_BASE_URL": "http://127.0.0.1:11434/v1",
                              "OPENAI_MODEL": "llama3"}, env_file=None)
    assert settings.ai_provider == "openai"


@pytest.mark.parametrize(("env", "variable"), [
    ({"AI_PROVIDER": "gemini"}, "AI_PROVIDER"),
    ({"REQUEST_TIMEOUT_SECONDS": "soon"}, "REQUEST_TIMEOUT_SECONDS"),
    ({"REQUEST_TIMEOUT_SECONDS": "-1"}, "REQUEST_TIMEOUT_SECONDS"),
    ({"POOL_SIZE": "0"}, "POOL_SIZE"),
    ({**AZURE, "AZURE_OPENAI_ENDPOINT": "example.com"}, "AZURE_OPENAI_ENDPOINT"),
    ({**AZURE, "AZURE_OPENAI_API_KEY": "changeme"}, "AZURE_OPENAI_API_KEY"),
    ({"AI_PROVIDER": "azure", "AZURE_OPENAI_API_KEY": KEY}, "AZURE_OPENAI_ENDPOINT"),
    ({**AZURE, "AZURE_OPENAI_DEPLOYMENT": ""}, "AZURE_OPENAI_DEPLOYMENT"),
    ({"AI_PROVIDER": "openai"}, "OPENAI_BASE_URL"),
    ({"LOG_LEVEL": "loud"}, "LOG_LEVEL"),
])
def test_a_bad_value_is_one_line_naming_the_variable(env, variable):
    with pytest.raises(ConfigError) as caught:
        load_settings(env, env_file=None)
    message = str(caught.value)
    assert message.startswith(variable) and "\n" not in message and KEY not in message


@pytest.mark.parametrize("variable", ["ADMIN_TOKEN", "METRICS_TOKEN"])
def test_a_token_shorter_than_32_characters_is_refused(variable):
    with pytest.raises(ConfigError) as caught:
        load_settings({variable: "x" * 31}, env_file=None)
    assert str(caught.value).startswith(variable) and "x" * 31 not in str(caught.value)
    assert load_settings({variable: "x" * 32}, env_file=None)


def test_secrets_never_show_in_repr_or_errors():
    settings = load_settings({**AZURE, "ADMIN_TOKEN": "admin-tok-55aa-long-enough-for-start-up",
                              "REDIS_URL": "redis://:pw-9911@h:6379/0"}, env_file=None)
    text = repr(settings) + str(settings)
    assert KEY not in text and "admin-tok-55aa-long-enough-for-start-up" not in text and "pw-9911" not in text


def test_a_dotenv_file_is_read_and_the_environment_wins(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("POOL_SIZE=7\nREQUEST_TIMEOUT_SECONDS=12\n")
    settings = load_settings({"POOL_SIZE": "3"}, env_file=env_file)
    assert settings.pool_size == 3 and settings.request_timeout_seconds == 12


def test_cors_origins_are_a_comma_separated_list():
    settings = load_settings({"CORS_ORIGINS": "https://a.example, https://b.example"},
                             env_file=None)
    assert settings.cors_origins == ("https://a.example", "https://b.example")


def test_env_example_lists_every_variable():
    from pathlib import Path

    from ielts_service.config import Settings

    text = (Path(__file__).resolve().parent.parent / ".env.example").read_text()
    listed = {line.split("=")[0].lstrip("# ").strip() for line in text.splitlines() if "=" in line}
    assert {name.upper() for name in Settings.model_fields} <= listed
