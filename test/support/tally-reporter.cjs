// Jest reporter: when CI_TEST_TALLY names a file, appends this run's passed/failed counts to it,
// so .ci/run can close with one "N passed, N failed" line over every suite it ran.
const { appendFileSync } = require('node:fs');

class TallyReporter {
  onRunComplete(_contexts, results) {
    const file = process.env.CI_TEST_TALLY;
    if (!file) return;
    const failed = results.numFailedTests + results.numRuntimeErrorTestSuites;
    appendFileSync(file, `${results.numPassedTests} ${failed}\n`);
  }
}

module.exports = TallyReporter;
