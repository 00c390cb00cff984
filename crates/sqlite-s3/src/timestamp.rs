//! Times recorded in the bucket (when a version was committed), written as
//! RFC 3339 in UTC with milliseconds.

use std::fmt;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A moment, as manifests record it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(crate) struct Timestamp(DateTime<Utc>);

impl Timestamp {
    /// Now, to the millisecond: what is written is what is read back.
    pub(crate) fn now() -> Self {
        Self(Utc::now().trunc_subsecs(3))
    }

    /// How long before `later` it was (zero if it was not before).
    pub(crate) fn age_at(self, later: Timestamp) -> Duration {
        later.0.signed_duration_since(self.0).to_std().unwrap_or_default()
    }

    /// The same moment as a [`SystemTime`].
    pub(crate) fn system_time(self) -> SystemTime {
        self.0.into()
    }
}

impl From<SystemTime> for Timestamp {
    fn from(time: SystemTime) -> Self {
        Self(time.into())
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(time: DateTime<Utc>) -> Self {
        Self(time)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_rfc3339_opts(SecondsFormat::Millis, true))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| Self(t.with_timezone(&Utc)))
            .map_err(|e| serde::de::Error::custom(format!("{text:?} is not an RFC 3339 time: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_as_rfc3339_and_refuse_anything_else() {
        let json = "\"2026-11-25T10:00:00.250Z\"";
        let time: Timestamp = serde_json::from_str(json).unwrap();
        assert_eq!(serde_json::to_string(&time).unwrap(), json);
        let offset: Timestamp = serde_json::from_str("\"2026-11-25T11:00:00.250+01:00\"").unwrap();
        assert_eq!(offset, time);
        assert!(serde_json::from_str::<Timestamp>("\"yesterday\"").is_err());
        let later = Timestamp::from(time.system_time() + Duration::from_secs(3));
        assert_eq!(time.age_at(later), Duration::from_secs(3));
        assert_eq!(later.age_at(time), Duration::ZERO);
        let now = Timestamp::now();
        assert_eq!(
            serde_json::from_str::<Timestamp>(&serde_json::to_string(&now).unwrap()).unwrap(),
            now
        );
    }
}
