/* A shared library that breaks the export rule on purpose, so that
 * abi_checker_reports_unprefixed_export can show check_exports.sh catching
 * it. */
int h2pool_fixture_ok(void);
int abi_fixture_leak(void);

int h2pool_fixture_ok(void) { return 1; }
int abi_fixture_leak(void) { return 2; }
