/** Two projects: pure-logic unit tests on the host, and lab tests that boot the lab VM or use host netns. */
// isolatedModules (tsconfig.json) makes ts-jest transpile each file alone: fast; `tsc` does the type check.
const transform = { '^.+\\.ts$': 'ts-jest' };
module.exports = {
  testSequencer: '<rootDir>/test/sequencer.js',
  projects: [
    { displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.ts'], transform, testEnvironment: 'node' },
    {
      displayName: 'lab',
      testMatch: ['<rootDir>/test/integration/**/*.test.ts'],
      transform,
      testEnvironment: 'node',
      // Per-project testTimeout is not honoured by jest 29: each lab test file sets jest.setTimeout itself.
    },
  ],
};
