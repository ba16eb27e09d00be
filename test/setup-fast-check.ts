import fc from 'fast-check';

// Properties run from a fixed seed so that a run on CI can be repeated exactly; set FC_SEED to
// explore others (`FC_SEED=$RANDOM npm test`). Counterexamples found that way become fixed
// cases in the suites, as `git ==; FOO=1 rm` did.
const seed = process.env.FC_SEED === undefined ? 20261121 : Number(process.env.FC_SEED);
fc.configureGlobal({ seed });
