//! JSON written by hand where an answer or a record is written so often
//! that serde's general machinery shows in profiles: strings copied as they
//! are when nothing in them needs escaping, UUIDs and times straight into
//! the buffer. Each writes exactly the bytes serde_json would (tests here
//! and in each user hold them to it).

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Writes `s` as a JSON string: copied as it is when nothing in it needs
/// escaping (ids and type names never do), else escaped by serde_json.
pub fn put_json_str(out: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        // Writing a string into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

/// Writes a UUID as a JSON string, hyphenated and lower-case (serde's form).
pub fn put_uuid(out: &mut Vec<u8>, id: &Uuid) {
    let mut buf = Uuid::encode_buffer();
    out.push(b'"');
    out.extend_from_slice(id.hyphenated().encode_lower(&mut buf).as_bytes());
    out.push(b'"');
}

/// Writes a time as a JSON string as chrono's serde does (RFC 3339 in UTC,
/// `Z`, the shortest of 0, 3, 6 or 9 fractional digits that is exact),
/// without its formatting machinery: the relay writes two per event.
pub fn put_time(out: &mut Vec<u8>, t: &DateTime<Utc>) {
    use chrono::{Datelike, Timelike};
    // The calendar fields of the UTC time, computed once.
    let t_utc = t.naive_utc();
    let (year, nanos) = (t_utc.year(), t_utc.nanosecond());
    // Outside four digits, or a leap second (carried in the nanoseconds):
    // chrono's own form.
    if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 {
        let _ = serde_json::to_writer(&mut *out, t);
        return;
    }
    let mut buf = *b"\"0000-00-00T00:00:00.000000000Z\"";
    let digits = |buf: &mut [u8], mut v: u32| {
        for b in buf.iter_mut().rev() {
            *b = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    digits(&mut buf[1..5], year as u32);
    digits(&mut buf[6..8], t_utc.month());
    digits(&mut buf[9..11], t_utc.day());
    digits(&mut buf[12..14], t_utc.hour());
    digits(&mut buf[15..17], t_utc.minute());
    digits(&mut buf[18..20], t_utc.second());
    let mut len = 20;
    let fraction = match nanos {
        0 => None,
        n if n % 1_000_000 == 0 => Some((n / 1_000_000, 3)),
        n if n % 1_000 == 0 => Some((n / 1_000, 6)),
        n => Some((n, 9)),
    };
    if let Some((value, width)) = fraction {
        digits(&mut buf[len + 1..len + 1 + width], value);
        len += 1 + width;
    }
    buf[len] = b'Z';
    buf[len + 1] = b'"';
    out.extend_from_slice(&buf[..len + 2]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_as_chrono_writes_them() {
        let mut times: Vec<DateTime<Utc>> = [
            "2026-12-01T08:00:00Z",
            "2026-12-01T08:00:00.120Z",
            "1999-01-09T23:59:59.000123Z",
            "2026-02-28T00:00:07.987654321Z",
            "0001-01-01T00:00:00.5Z",
            "2016-12-31T23:59:60.5Z",
        ]
        .iter()
        .map(|text| text.parse().unwrap())
        .collect();
        // Beyond four digits of year, both ways.
        times.push(DateTime::from_timestamp(300_000_000_000, 7).unwrap());
        times.push(DateTime::from_timestamp(-70_000_000_000, 0).unwrap());
        for t in times {
            let mut ours = Vec::new();
            put_time(&mut ours, &t);
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                serde_json::to_string(&t).unwrap()
            );
        }
    }

    #[test]
    fn strings_and_ids_are_written_as_serde_writes_them() {
        for s in [
            "plain",
            "",
            "quote \" here",
            "back\\slash",
            "tab\there",
            "\u{1}",
            "雅 café",
        ] {
            let mut ours = Vec::new();
            put_json_str(&mut ours, s);
            assert_eq!(ours, serde_json::to_vec(s).unwrap(), "{s:?}");
        }
        let id = Uuid::now_v7();
        let mut ours = Vec::new();
        put_uuid(&mut ours, &id);
        assert_eq!(ours, serde_json::to_vec(&id).unwrap());
    }
}
