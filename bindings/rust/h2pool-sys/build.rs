//! Finds libh2pool by running the `pkg-config` program (no build
//! dependencies). Overrides:
//!
//! - `H2POOL_LIB_DIR=DIR`: link `DIR/libh2pool.so` without pkg-config
//!   (`H2POOL_INCLUDE_DIR` may name the header's directory for the tests).
//! - `H2POOL_NO_PKG_CONFIG=1`: do not run pkg-config; link `-lh2pool` from
//!   the linker's default search path.
//! - `PKG_CONFIG`: the pkg-config program to run (default `pkg-config`).

use std::env;
use std::process::Command;

fn main() {
    for var in [
        "H2POOL_LIB_DIR",
        "H2POOL_INCLUDE_DIR",
        "H2POOL_NO_PKG_CONFIG",
        "PKG_CONFIG",
        "PKG_CONFIG_PATH",
        "PKG_CONFIG_LIBDIR",
        "PKG_CONFIG_SYSROOT_DIR",
    ] {
        println!("cargo:rerun-if-env-changed={}", var);
    }
    println!("cargo:rerun-if-changed=build.rs");

    if let Some(dir) = env::var_os("H2POOL_LIB_DIR") {
        println!("cargo:rustc-link-search=native={}", dir.to_string_lossy());
        println!("cargo:rustc-link-lib=dylib=h2pool");
        if let Some(inc) = env::var_os("H2POOL_INCLUDE_DIR") {
            export_include_dir(&inc.to_string_lossy());
        }
        return;
    }
    if env::var_os("H2POOL_NO_PKG_CONFIG").is_some() {
        println!("cargo:rustc-link-lib=dylib=h2pool");
        if let Some(inc) = env::var_os("H2POOL_INCLUDE_DIR") {
            export_include_dir(&inc.to_string_lossy());
        }
        return;
    }

    let pkg_config = env::var("PKG_CONFIG").unwrap_or_else(|_| "pkg-config".to_string());
    let libs = run(&pkg_config, &["--libs", "h2pool"]);
    for flag in libs.split_whitespace() {
        if let Some(dir) = flag.strip_prefix("-L") {
            println!("cargo:rustc-link-search=native={}", dir);
        } else if let Some(lib) = flag.strip_prefix("-l") {
            println!("cargo:rustc-link-lib=dylib={}", lib);
        } else {
            println!("cargo:rustc-link-arg={}", flag);
        }
    }
    let include = run(&pkg_config, &["--variable=includedir", "h2pool"]);
    export_include_dir(include.trim());
}

fn export_include_dir(dir: &str) {
    // `DEP_H2POOL_INCLUDE` for dependent build scripts, and an env var for
    // this crate's own tests (which read h2pool.h).
    println!("cargo:include={}", dir);
    println!("cargo:rustc-env=H2POOL_SYS_INCLUDE_DIR={}", dir);
}

fn run(program: &str, args: &[&str]) -> String {
    let out = match Command::new(program).args(args).output() {
        Ok(out) => out,
        Err(e) => fail(&format!(
            "cannot run `{}`: {}. Install pkg-config, or set H2POOL_LIB_DIR to \
             the directory of libh2pool.so.",
            program, e
        )),
    };
    if !out.status.success() {
        fail(&format!(
            "`{} {}` failed: {}. Set PKG_CONFIG_PATH to the directory holding \
             h2pool.pc (PREFIX/lib/pkgconfig), or H2POOL_LIB_DIR to the \
             directory of libh2pool.so.",
            program,
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fail(msg: &str) -> ! {
    eprintln!("h2pool-sys: {}", msg);
    std::process::exit(1);
}
