//! consul-db-checks: single-shot checks that tell Consul (or keepalived) which Redis or MySQL/MariaDB
//! instance takes writes and which serve reads.
//!
//! Layout: [`kinds`] says what a group runs and what a service answers; [`checks`] lists each kind's write and read check and [`executables`] every executable; [`runner`] runs a check as a process; [`report`] owns status, exit codes and output;
//! [`cli`], [`credentials`], [`duration`], [`deadline`] and [`probe`] are shared by every check;
//! [`read_pool`] and [`write_pool`] are the pool rules both databases share; [`redis_checks`] and [`mysql_checks`]
//! hold the checks, each split into facts (I/O) and a pure `decide` function; [`generator`] writes
//! the Consul and keepalived files that run them; [`serve`] serves one node's checks over HTTP.
#![warn(missing_docs)]

pub mod checks;
pub mod cli;
pub mod credentials;
pub mod deadline;
pub mod docs;
pub mod duration;
pub mod edge;
pub mod executables;
pub mod generator;
pub mod kinds;
pub mod memory;
pub mod mysql_checks;
pub mod probe;
pub mod read_pool;
pub mod redis_checks;
pub mod report;
pub mod runner;
pub mod serve;
#[doc(hidden)]
pub mod test_files;
pub mod topology;
pub mod write_pool;

/// Declares a check executable: its `main`, and the allocator that bounds its memory
/// (`check_main!(redis_checks::master::RedisMaster)` is the whole entry file).
#[macro_export]
macro_rules! check_main {
    ($check:ty) => {
        #[global_allocator]
        static ALLOCATOR: $crate::memory::CappedAllocator = $crate::memory::CappedAllocator;

        fn main() {
            $crate::runner::run::<$check>()
        }
    };
}
