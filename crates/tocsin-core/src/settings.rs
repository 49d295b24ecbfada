//! Incident settings an instance configures: types, severities, roles, custom
//! fields and the priority matrix, with sensible ITIL/SRE defaults.

use serde::{Deserialize, Serialize};

use crate::fields::{FieldDef, FieldKind};
use crate::incident::PriorityMatrix;
use crate::Invalid;

/// A configured incident type (category).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentType {
    /// Identifier used in the API, e.g. `software`.
    pub name: String,
    /// Whether closing needs the reporter's confirmation (ITIL).
    #[serde(default)]
    pub requires_confirmation: bool,
}

/// A configured severity level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeverityDef {
    /// Identifier, e.g. `SEV1`.
    pub name: String,
    /// When to use this severity.
    #[serde(default)]
    pub description: String,
}

/// A configured incident role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleDef {
    /// Identifier, e.g. `commander`.
    pub name: String,
    /// Whether several people may hold it at once.
    #[serde(default)]
    pub multiple: bool,
    /// What the role does.
    #[serde(default)]
    pub description: String,
}

/// Everything an instance configures about incidents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct IncidentSettings {
    /// Types (categories), the first is the default.
    pub types: Vec<IncidentType>,
    /// Severities, most severe first; the last is the default.
    pub severities: Vec<SeverityDef>,
    /// Roles beyond the three built in (commander, investigator, communicator).
    pub custom_roles: Vec<RoleDef>,
    /// Custom fields.
    pub custom_fields: Vec<FieldDef>,
    /// Impact x urgency -> priority.
    pub priority_matrix: PriorityMatrix,
}

impl Default for IncidentSettings {
    fn default() -> Self {
        let ty = |name: &str, confirm| IncidentType {
            name: name.into(),
            requires_confirmation: confirm,
        };
        let sev = |name: &str, description: &str| SeverityDef {
            name: name.into(),
            description: description.into(),
        };
        IncidentSettings {
            types: vec![
                ty("software", false),
                ty("hardware", false),
                ty("network", false),
                ty("security", false),
                ty("service_request", true),
            ],
            severities: vec![
                sev(
                    "SEV1",
                    "Critical: customer-facing outage or data loss; all hands.",
                ),
                sev("SEV2", "Major: significant degradation for many customers."),
                sev("SEV3", "Minor: limited impact, workaround available."),
                sev(
                    "SEV4",
                    "Low: cosmetic or internal only, no customer impact.",
                ),
            ],
            custom_roles: Vec::new(),
            custom_fields: Vec::new(),
            priority_matrix: PriorityMatrix::default(),
        }
    }
}

/// The roles every instance has.
pub fn builtin_roles() -> Vec<RoleDef> {
    let role = |name: &str, multiple, description: &str| RoleDef {
        name: name.into(),
        multiple,
        description: description.into(),
    };
    vec![
        role(
            "commander",
            false,
            "Incident commander: coordinates the response and decides.",
        ),
        role("investigator", true, "Investigates and fixes."),
        role(
            "communicator",
            false,
            "External communicator: keeps stakeholders and customers informed.",
        ),
    ]
}

impl IncidentSettings {
    /// Checks the settings make sense; called when the configuration is loaded.
    pub fn validate(&self) -> Result<(), Invalid> {
        unique("incident.types", self.types.iter().map(|t| t.name.as_str()))?;
        unique(
            "incident.severities",
            self.severities.iter().map(|s| s.name.as_str()),
        )?;
        let roles = self.roles();
        unique(
            "incident.custom_roles",
            roles.iter().map(|r| r.name.as_str()),
        )?;
        unique(
            "incident.custom_fields",
            self.custom_fields.iter().map(|f| f.name.as_str()),
        )?;
        for f in &self.custom_fields {
            let selects = matches!(f.kind, FieldKind::Select | FieldKind::MultiSelect);
            if selects && f.options.is_empty() {
                return Err(Invalid::new(
                    format!("incident.custom_fields.{}.options", f.name),
                    "a select field needs at least one option",
                ));
            }
        }
        Ok(())
    }

    /// Built-in and custom roles together.
    pub fn roles(&self) -> Vec<RoleDef> {
        let mut all = builtin_roles();
        all.extend(self.custom_roles.iter().cloned());
        all
    }

    /// Looks up a role by name.
    pub fn role(&self, name: &str) -> Option<RoleDef> {
        self.roles().into_iter().find(|r| r.name == name)
    }

    /// Looks up a type by name.
    pub fn incident_type(&self, name: &str) -> Option<&IncidentType> {
        self.types.iter().find(|t| t.name == name)
    }

    /// Whether a severity is configured.
    pub fn has_severity(&self, name: &str) -> bool {
        self.severities.iter().any(|s| s.name == name)
    }

    /// The severity used when none is given: the least severe.
    pub fn default_severity(&self) -> &str {
        self.severities
            .last()
            .map(|s| s.name.as_str())
            .unwrap_or("")
    }

    /// The type used when none is given: the first.
    pub fn default_type(&self) -> &str {
        self.types.first().map(|t| t.name.as_str()).unwrap_or("")
    }

    /// The position of a severity, 0 for the most severe; for sorting.
    pub fn severity_rank(&self, name: &str) -> usize {
        self.severities
            .iter()
            .position(|s| s.name == name)
            .unwrap_or(usize::MAX)
    }
}

fn unique<'a>(field: &str, names: impl Iterator<Item = &'a str>) -> Result<(), Invalid> {
    let mut seen: Vec<&str> = Vec::new();
    for n in names {
        if n.trim().is_empty() {
            return Err(Invalid::new(field, "names may not be empty"));
        }
        if seen.contains(&n) {
            return Err(Invalid::new(field, format!("`{n}` is defined twice")));
        }
        seen.push(n);
    }
    if seen.is_empty() && field != "incident.custom_fields" && field != "incident.custom_roles" {
        return Err(Invalid::new(field, "at least one is required"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let s = IncidentSettings::default();
        s.validate().unwrap();
        assert_eq!(s.default_severity(), "SEV4");
        assert_eq!(s.default_type(), "software");
        assert!(
            s.incident_type("service_request")
                .unwrap()
                .requires_confirmation
        );
        assert_eq!(s.roles().len(), 3);
    }

    #[test]
    fn duplicate_and_empty_names_are_refused() {
        let mut s = IncidentSettings::default();
        s.custom_roles.push(RoleDef {
            name: "commander".into(),
            multiple: false,
            description: String::new(),
        });
        assert_eq!(s.validate().unwrap_err().field, "incident.custom_roles");
        let mut s = IncidentSettings::default();
        s.severities.clear();
        assert_eq!(s.validate().unwrap_err().field, "incident.severities");
    }
}
