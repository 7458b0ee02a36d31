"""The environment variables the monitor reads, by name: importable without loading anything else."""

CONFIG_ENV = "MONITOR_CONFIG"
DATABASE_ENV = "MONITOR_DATABASE_URL"
TOKEN_ENV = "MONITOR_TELEGRAM_TOKEN"
API_URL_ENV = "MONITOR_TELEGRAM_API_URL"
