//! A server of the inventory: its role, its status, its capacity, and the
//! placement rule.

use crate::catalog::upper_enum;

upper_enum!(
    /// What a server does.
    ServerRole {
        Web => "WEB", Mail => "MAIL", Dns => "DNS", Cloud => "CLOUD", Db => "DB", Backup => "BACKUP",
    }
);

upper_enum!(
    /// Whether new accounts may go to a server. Only `ONLINE` ones take new
    /// accounts; the others keep serving what they have.
    ServerStatus {
        Online => "ONLINE", Degraded => "DEGRADED", Offline => "OFFLINE", Maintenance => "MAINTENANCE",
    }
);

/// A server as placement sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate<Id> {
    pub id: Id,
    pub role: ServerRole,
    pub status: ServerStatus,
    /// How many accounts it may hold.
    pub capacity: i64,
    /// How many it holds.
    pub used: i64,
}

/// Where a new account of `role` goes: an `ONLINE` server of that role with
/// room left, the least filled one first (ties: the first listed). `Err`
/// says why there is none, for the order to show.
pub fn place<Id: Clone>(candidates: &[Candidate<Id>], role: ServerRole) -> Result<Id, String> {
    let of_role: Vec<_> = candidates.iter().filter(|c| c.role == role).collect();
    if of_role.is_empty() {
        return Err(format!("no {} server is in the inventory", role.as_str()));
    }
    let online: Vec<_> = of_role
        .iter()
        .filter(|c| c.status == ServerStatus::Online)
        .collect();
    if online.is_empty() {
        return Err(format!("no {} server is ONLINE", role.as_str()));
    }
    online
        .iter()
        .filter(|c| c.used < c.capacity)
        .min_by(|a, b| {
            // used/capacity, compared without division.
            (i128::from(a.used) * i128::from(b.capacity))
                .cmp(&(i128::from(b.used) * i128::from(a.capacity)))
        })
        .map(|c| c.id.clone())
        .ok_or_else(|| format!("every ONLINE {} server is full", role.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(
        id: u8,
        role: ServerRole,
        status: ServerStatus,
        capacity: i64,
        used: i64,
    ) -> Candidate<u8> {
        Candidate {
            id,
            role,
            status,
            capacity,
            used,
        }
    }

    #[test]
    fn the_least_filled_online_server_of_the_role_with_room_wins() {
        use ServerRole::*;
        use ServerStatus::*;
        let servers = [
            c(1, Web, Online, 10, 9),
            c(2, Web, Online, 100, 20),
            c(3, Web, Maintenance, 100, 0),
            c(4, Mail, Online, 100, 0),
            c(5, Web, Online, 10, 10),
        ];
        assert_eq!(place(&servers, Web), Ok(2));
        assert_eq!(place(&servers, Mail), Ok(4));
        assert_eq!(
            place(&servers, Dns),
            Err("no DNS server is in the inventory".into())
        );
        assert_eq!(
            place(&[c(1, Web, Offline, 1, 0)], Web),
            Err("no WEB server is ONLINE".into())
        );
        assert_eq!(
            place(&[c(1, Web, Online, 1, 1)], Web),
            Err("every ONLINE WEB server is full".into())
        );
    }
}
