pytest_plugins = ["streamia_kit.testing", "streamia_catalogue_projection.testing"]
