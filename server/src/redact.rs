//! Secrets out of what is logged: the one function every message that names a database or Redis
//! location goes through.

/// `location` with every password in it replaced by `***`: in the user part of a URL
/// (`postgres://ops:pw@db/x`, `redis://:pw@host`), in its query (`?password=pw`,
/// `&sslpassword=pw`), and in a `key=value` connection string (`host=db password=pw`).
pub fn redacted(location: &str) -> String {
    match location.split_once("://") {
        Some((scheme, rest)) => {
            let (main, query) = match rest.find(['?', '#']) {
                Some(at) => rest.split_at(at),
                None => (rest, ""),
            };
            let main = match main.rfind('@') {
                Some(at) => match main[..at].split_once(':') {
                    Some((user, _password)) => format!("{user}:***{}", &main[at..]),
                    None => main.to_owned(),
                },
                None => main.to_owned(),
            };
            format!("{scheme}://{main}{}", redact_pairs(query, ['?', '&', '#', ';']))
        }
        None => redact_pairs(location, [' ', '\t', '\n', ';']),
    }
}

/// `key=value` pairs separated by any of `separators`, with secret values hidden.
fn redact_pairs(text: &str, separators: [char; 4]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let first = rest.chars().next().map_or(1, char::len_utf8);
        let end = rest[first..].find(separators).map_or(rest.len(), |i| i + first);
        let (pair, tail) = rest.split_at(end);
        let (lead, body) = match pair.chars().next() {
            Some(c) if separators.contains(&c) => pair.split_at(c.len_utf8()),
            _ => ("", pair),
        };
        out.push_str(lead);
        match body.split_once('=') {
            Some((key, _value)) if is_secret(key) => {
                out.push_str(key);
                out.push_str("=***");
            }
            _ => out.push_str(body),
        }
        rest = tail;
    }
    out
}

fn is_secret(key: &str) -> bool {
    let key = key.trim().to_ascii_lowercase();
    key.ends_with("password") || matches!(key.as_str(), "pass" | "pwd" | "secret" | "token")
}

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn passwords_in_the_user_part_are_hidden() {
        assert_eq!(redacted("postgres://ops:s3cr@t@db:5432/x"), "postgres://ops:***@db:5432/x");
        assert_eq!(redacted("postgres://ops:pa/ss@db/x"), "postgres://ops:***@db/x", "a slash in the password");
        assert_eq!(redacted("redis://:secret@10.0.0.5:6379/0"), "redis://:***@10.0.0.5:6379/0");
        assert_eq!(redacted("redis://user:secret@host"), "redis://user:***@host");
    }

    #[test]
    fn passwords_in_the_query_are_hidden() {
        assert_eq!(redacted("postgres://db/x?user=ops&password=s3cret"), "postgres://db/x?user=ops&password=***");
        assert_eq!(
            redacted("postgresql://db/x?password=a&sslmode=require"),
            "postgresql://db/x?password=***&sslmode=require"
        );
        assert_eq!(
            redacted("postgres://db/x?sslpassword=k&PASSWORD=p"),
            "postgres://db/x?sslpassword=***&PASSWORD=***"
        );
    }

    #[test]
    fn passwords_in_a_connection_string_are_hidden() {
        assert_eq!(redacted("host=db user=ops password=s3cret dbname=x"), "host=db user=ops password=*** dbname=x");
    }

    #[test]
    fn everything_else_is_left_as_it_is() {
        assert_eq!(redacted("postgres://ops@db/x"), "postgres://ops@db/x");
        assert_eq!(redacted("postgres://db/x?user=a@b"), "postgres://db/x?user=a@b");
        assert_eq!(redacted("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(redacted("livedash.db"), "livedash.db");
        assert_eq!(redacted("/var/lib/livedash/my db.sqlite"), "/var/lib/livedash/my db.sqlite");
        assert_eq!(redacted("/données/é.db"), "/données/é.db");
    }
}
