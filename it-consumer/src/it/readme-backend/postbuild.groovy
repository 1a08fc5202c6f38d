// The conformance contract ran all its rules on the documented backend and every one passed.
def log = new File(basedir, 'build.log').getText('UTF-8')
def summary = log.readLines().find { it.startsWith("starling conformance: MyBackendConformanceTest, backend 'mine'") }
assert summary != null : 'the contract printed no summary line for MyBackendConformanceTest'
assert summary.contains(': 51 rules, 51 passed, 0 failed, 0 skipped') : summary
true
