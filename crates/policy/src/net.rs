//! `net.cidr_is_valid`, `net.cidr_contains` and `net.cidr_expand`, as regorus' `net` feature computes them
//! (its `builtins/net.rs`, MIT licensed): regorus 0.14.1 does not build that feature without `arc`, which
//! this crate turns off (see `Cargo.toml`).
//!
//! Two deliberate differences, both errors so the decision fails closed: a malformed address or network is
//! an error where regorus, outside its strict mode, answers undefined; and `net.cidr_expand` refuses networks
//! of more than [`EXPAND_LIMIT`] addresses where regorus expands until its memory limit.

use std::net::IpAddr;

use ipnet::IpNet;
use regorus::Value;

/// The most addresses `net.cidr_expand` lists (a /16 of IPv4).
pub(crate) const EXPAND_LIMIT: u128 = 65_536;

fn string<'a>(args: &'a [Value], name: &str) -> Result<&'a str, String> {
    match args {
        [Value::String(s), ..] => Ok(s),
        _ => Err(format!("{name} expects a string")),
    }
}

/// `net.cidr_is_valid(cidr)`: an address, a slash and a prefix length in range for the address's family.
pub(crate) fn cidr_is_valid(args: &[Value]) -> Result<Value, String> {
    let cidr = string(args, "net.cidr_is_valid")?;
    let valid = cidr.split_once('/').is_some_and(|(addr, prefix)| {
        let limit = match addr.parse::<IpAddr>() {
            Ok(IpAddr::V4(_)) => 32,
            Ok(IpAddr::V6(_)) => 128,
            Err(_) => return false,
        };
        prefix.parse::<i16>().is_ok_and(|prefix| (0..=limit).contains(&prefix))
    });
    Ok(Value::from(valid))
}

/// `net.cidr_contains(cidr, cidr_or_ip)`: whether the network holds the address or the whole other network.
pub(crate) fn cidr_contains(args: &[Value]) -> Result<Value, String> {
    let [Value::String(cidr), Value::String(other)] = args else {
        return Err("net.cidr_contains expects two strings".to_owned());
    };
    let net: IpNet =
        cidr.parse().map_err(|_| "net.cidr_contains: the first argument is not a CIDR".to_owned())?;
    let contains = if other.contains('/') {
        let subnet: IpNet =
            other.parse().map_err(|_| "net.cidr_contains: the second argument is not a CIDR".to_owned())?;
        net.contains(&subnet)
    } else {
        let addr: IpAddr = other
            .parse()
            .map_err(|_| "net.cidr_contains: the second argument is not an IP address".to_owned())?;
        net.contains(&addr)
    };
    Ok(Value::from(contains))
}

/// `net.cidr_expand(cidr)`: every address of the network; for IPv4 networks shorter than /31 the network and
/// broadcast addresses too (as regorus lists them).
pub(crate) fn cidr_expand(args: &[Value]) -> Result<Value, String> {
    let cidr = string(args, "net.cidr_expand")?;
    let net: IpNet = cidr.parse().map_err(|_| "net.cidr_expand: not a CIDR".to_owned())?;
    let bits = u32::from(net.max_prefix_len() - net.prefix_len());
    if bits >= 128 || 1u128 << bits > EXPAND_LIMIT {
        return Err(format!("net.cidr_expand: more than {EXPAND_LIMIT} addresses"));
    }
    let mut hosts: Vec<Value> = net.hosts().map(|host| Value::String(host.to_string().into())).collect();
    if matches!(net, IpNet::V4(_)) && net.prefix_len() < 31 {
        hosts.insert(0, Value::String(net.network().to_string().into()));
        hosts.push(Value::String(net.broadcast().to_string().into()));
    }
    Ok(Value::from(hosts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(f: fn(&[Value]) -> Result<Value, String>, args: &[&str]) -> Result<Value, String> {
        let args: Vec<Value> = args.iter().map(|a| Value::from(*a)).collect();
        f(&args)
    }

    #[test]
    fn cidr_is_valid_as_regorus() {
        for cidr in ["127.0.0.1/32", "10.0.0.0/8", "0.1.2.3/32", "::1/128", "10.0.0.0/0"] {
            assert_eq!(call(cidr_is_valid, &[cidr]), Ok(Value::from(true)), "{cidr}");
        }
        for cidr in ["256.0.0.0/8", "127.0.0.1/33", "::1/129", "10.0.0.0", "10.0.0.0/-1", "x/8", ""] {
            assert_eq!(call(cidr_is_valid, &[cidr]), Ok(Value::from(false)), "{cidr}");
        }
        assert!(cidr_is_valid(&[Value::from(1)]).is_err());
    }

    #[test]
    fn cidr_contains_as_regorus() {
        let cases = [
            ("127.0.0.1/32", "127.0.0.1", true),
            ("10.0.0.0/8", "10.10.10.10", true),
            ("10.0.0.0/8", "10.10.10.0/24", true),
            ("fd00::/16", "fd00::/17", true),
            ("127.0.0.1/32", "127.0.0.2", false),
            ("10.0.0.0/8", "11.0.0.1", false),
            ("fd00::/16", "fd00::/15", false),
            ("10.0.0.0/8", "::1", false),
        ];
        for (cidr, other, expected) in cases {
            assert_eq!(call(cidr_contains, &[cidr, other]), Ok(Value::from(expected)), "{cidr} {other}");
        }
        assert!(call(cidr_contains, &["nonsense", "10.0.0.1"]).is_err());
        assert!(call(cidr_contains, &["10.0.0.0/8", "10.0.0.300"]).is_err());
        assert!(call(cidr_contains, &["10.0.0.0/8", "10.0.0.0/40"]).is_err());
    }

    #[test]
    fn cidr_expand_as_regorus_within_its_limit() {
        let expanded = |cidr: &str| {
            call(cidr_expand, &[cidr])
                .map(|v| crate::compile::to_json(&v).map(|j| j.to_string()).unwrap_or_default())
        };
        assert_eq!(
            expanded("192.168.1.0/30"),
            Ok(r#"["192.168.1.0","192.168.1.1","192.168.1.2","192.168.1.3"]"#.into())
        );
        assert_eq!(expanded("10.0.0.1/32"), Ok(r#"["10.0.0.1"]"#.into()));
        assert_eq!(expanded("10.0.0.0/31"), Ok(r#"["10.0.0.0","10.0.0.1"]"#.into()));
        assert_eq!(expanded("::1/127"), Ok(r#"["::","::1"]"#.into()));
        let sixteen =
            call(cidr_expand, &["10.1.0.0/16"]).ok().and_then(|v| v.as_array().map(|a| a.len()).ok());
        assert_eq!(sixteen, Some(65_536));
        assert!(call(cidr_expand, &["10.0.0.0/15"]).is_err(), "over the limit");
        assert!(call(cidr_expand, &["::/0"]).is_err(), "over the limit");
        assert!(call(cidr_expand, &["not a cidr"]).is_err());
    }
}
