//! Password policy: 12 to 128 characters, counted as characters (not
//! bytes), never truncated.

pub const MIN_CHARS: usize = 12;
pub const MAX_CHARS: usize = 128;

/// Checks a new password; the message is for the person choosing it.
pub fn check_new_password(password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if n < MIN_CHARS {
        return Err(format!("must be at least {MIN_CHARS} characters long"));
    }
    if n > MAX_CHARS {
        return Err(format!("must be at most {MAX_CHARS} characters long"));
    }
    if password.trim().is_empty() {
        return Err("must not be only spaces".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_is_counted_in_characters() {
        assert!(check_new_password("short").is_err());
        assert!(check_new_password("correct horse").is_ok());
        assert!(check_new_password(&"é".repeat(12)).is_ok());
        assert!(check_new_password(&"x".repeat(128)).is_ok());
        assert!(check_new_password(&"x".repeat(129)).is_err());
        assert!(check_new_password(&" ".repeat(20)).is_err());
    }
}
