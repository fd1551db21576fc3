pytest_plugins = ["streamia_kit.testing"]
