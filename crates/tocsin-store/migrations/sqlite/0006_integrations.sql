-- An integration's routing rules and generic-webhook templates, as JSON
-- (tocsin_core::integration::IntegrationConfig); '{}' is no rules and default templates.
ALTER TABLE integration_keys ADD COLUMN config TEXT NOT NULL DEFAULT '{}';
