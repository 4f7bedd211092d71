//! The soaks: many events under faults and floods, each checked for nothing lost and nothing
//! doubled. Longer than `tests/it`; the full-size figures are `make bench`'s.

mod flood;
mod reliability;

use privwatch_testkit as support;
