//! What the services page shows for every service at once, in one query rather
//! than one per service.

use sqlx::Row;

use crate::{Store, StoreError};

/// One service's row on the services page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceOverview {
    /// The service.
    pub service_id: i64,
    /// The escalation policy it uses, if any.
    pub escalation_policy_id: Option<i64>,
    /// How many incidents affecting it are open (not resolved or closed).
    pub open_incidents: i64,
}

impl Store {
    /// Every service's escalation policy and open-incident count.
    pub async fn service_overview(&self) -> Result<Vec<ServiceOverview>, StoreError> {
        let rows = sqlx::query(
            "SELECT s.id, s.escalation_policy_id, \
             (SELECT COUNT(*) FROM incident_services x JOIN incidents i ON i.id = x.incident_id \
              WHERE x.service_id = s.id AND i.status NOT IN ('resolved', 'closed')) AS n \
             FROM services s ORDER BY s.id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ServiceOverview {
                    service_id: r.try_get("id")?,
                    escalation_policy_id: r.try_get("escalation_policy_id")?,
                    open_incidents: r.try_get("n")?,
                })
            })
            .collect()
    }
}
