//! Walking the shell AST: lists, `&&`/`||`, pipelines and compound commands (groups, every
//! branch of `if` and `case`, loops, `for`), joining the states of the branches that continue.

use super::expand::Field;
use super::state::{Args, Function, State, Val, merge};
use super::{MAX_LOOP_VALUES, MAX_STEPS, MAX_WALK_NESTING, Tracer};
use crate::model::{Choice, Location, Reason};
use crate::shell::{self, AndOr, Command, List, Part, Word};
use std::rc::Rc;

/// Where the commands being walked come from.
#[derive(Clone, Debug)]
pub(super) enum Origin {
    /// A script or sourced file (absolute path in the image).
    File(Rc<str>),
    /// A `sh -c` string or `eval`: every line is the location of that command.
    Inline(Location),
}

impl Origin {
    pub(super) fn at(&self, line: u32) -> Location {
        match self {
            Origin::File(file) => Location::at(file.to_string(), line),
            Origin::Inline(location) => location.clone(),
        }
    }
}

/// The context of the commands being walked.
#[derive(Clone, Debug)]
pub(super) struct Ctx {
    pub(super) origin: Origin,
    pub(super) choices: Vec<Choice>,
    pub(super) depth: usize,
}

impl Ctx {
    pub(super) fn choose(&self, at: Location, branch: String) -> Ctx {
        let mut ctx = self.clone();
        ctx.choices.push(Choice { at, branch });
        ctx
    }
}

/// How a command list ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Flow {
    Next,
    /// `return`: ends a function or a sourced file.
    Return,
    /// `exit` or `exec`: ends the script.
    Exit,
}

impl Tracer<'_> {
    pub(super) fn walk_list(
        &mut self,
        list: &List,
        state: &mut State,
        ctx: &Ctx,
        tail: bool,
    ) -> Flow {
        for (i, and_or) in list.iter().enumerate() {
            let flow = self.walk_and_or(and_or, state, ctx, tail && i + 1 == list.len());
            if flow != Flow::Next {
                return flow;
            }
        }
        Flow::Next
    }

    fn walk_and_or(&mut self, and_or: &AndOr, state: &mut State, ctx: &Ctx, tail: bool) -> Flow {
        if and_or.background {
            // Runs alongside the script: followed like the last command, in a subshell.
            let mut inner = state.clone();
            self.walk_pipeline(&and_or.first, &mut inner, ctx, true);
            for pipeline in &and_or.rest {
                self.walk_pipeline(pipeline, &mut inner, ctx, true);
            }
            return Flow::Next;
        }
        let flow = self.walk_pipeline(&and_or.first, state, ctx, tail && and_or.rest.is_empty());
        if and_or.rest.is_empty() || flow != Flow::Next {
            return flow;
        }
        // What follows `&&`/`||` may not run.
        let mut inner = state.clone();
        let mut last = Flow::Next;
        for (i, pipeline) in and_or.rest.iter().enumerate() {
            let tail = tail && i + 1 == and_or.rest.len();
            last = self.walk_pipeline(pipeline, &mut inner, ctx, tail);
            if last != Flow::Next {
                break;
            }
        }
        self.join(state, vec![(inner, last)], true)
    }

    fn walk_pipeline(
        &mut self,
        pipeline: &shell::Pipeline,
        state: &mut State,
        ctx: &Ctx,
        tail: bool,
    ) -> Flow {
        match pipeline.0.as_slice() {
            [command] => self.walk_command(command, state, ctx, tail),
            commands => {
                // Each runs in a subshell.
                for (i, command) in commands.iter().enumerate() {
                    let mut inner = state.clone();
                    self.walk_command(command, &mut inner, ctx, tail && i + 1 == commands.len());
                }
                Flow::Next
            }
        }
    }

    /// Merges the states of the branches that continue (and the state before them when no
    /// branch may be taken) into `state`.
    pub(super) fn join(
        &mut self,
        state: &mut State,
        outcomes: Vec<(State, Flow)>,
        fallthrough: bool,
    ) -> Flow {
        let all_return = outcomes.iter().all(|(_, f)| *f == Flow::Return);
        let mut continuing: Vec<State> = Vec::new();
        if fallthrough {
            continuing.push(state.clone());
        }
        continuing.extend(
            outcomes
                .into_iter()
                .filter(|(_, flow)| *flow == Flow::Next)
                .map(|(s, _)| s),
        );
        if continuing.is_empty() {
            return if all_return { Flow::Return } else { Flow::Exit };
        }
        *state = merge(continuing);
        Flow::Next
    }

    pub(super) fn walk_command(
        &mut self,
        command: &Command,
        state: &mut State,
        ctx: &Ctx,
        tail: bool,
    ) -> Flow {
        if self.exhausted {
            return Flow::Exit;
        }
        self.steps += 1;
        if self.steps > MAX_STEPS {
            self.exhausted = true;
            let line = command_line(command);
            self.unknown(
                Reason::RecursionLimitReached,
                format!("stopped after walking {MAX_STEPS} commands"),
                ctx.origin.at(line),
            );
            return Flow::Exit;
        }
        match command {
            Command::Simple {
                line,
                assignments,
                words,
            } => self.walk_simple(*line, assignments, words, state, ctx, tail),
            Command::Function { name, body, .. } => {
                let function = Function {
                    body: body.clone(),
                    origin: ctx.origin.clone(),
                };
                state.functions.insert(name.clone(), Rc::new(function));
                Flow::Next
            }
            Command::Test { .. } => Flow::Next,
            compound => {
                self.nesting += 1;
                let flow = if self.nesting > MAX_WALK_NESTING {
                    self.unknown(
                        Reason::RecursionLimitReached,
                        format!("compound commands nested deeper than {MAX_WALK_NESTING}"),
                        ctx.origin.at(command_line(compound)),
                    );
                    Flow::Next
                } else {
                    self.walk_compound(compound, state, ctx, tail)
                };
                self.nesting -= 1;
                flow
            }
        }
    }

    fn walk_compound(
        &mut self,
        command: &Command,
        state: &mut State,
        ctx: &Ctx,
        tail: bool,
    ) -> Flow {
        match command {
            Command::Group {
                body,
                subshell: true,
                ..
            } => {
                let mut inner = state.clone();
                self.walk_list(body, &mut inner, ctx, tail);
                Flow::Next
            }
            Command::Group { body, .. } => self.walk_list(body, state, ctx, tail),
            Command::If {
                branches,
                otherwise,
                ..
            } => {
                let mut outcomes = Vec::new();
                for (k, branch) in branches.iter().enumerate() {
                    self.walk_list(&branch.condition, state, ctx, false);
                    let label = if k == 0 { "then" } else { "elif" };
                    let inner_ctx = ctx.choose(ctx.origin.at(branch.line), label.to_string());
                    let mut inner = state.clone();
                    let flow = self.walk_list(&branch.body, &mut inner, &inner_ctx, tail);
                    outcomes.push((inner, flow));
                }
                if let Some((line, body)) = otherwise {
                    let inner_ctx = ctx.choose(ctx.origin.at(*line), "else".to_string());
                    let mut inner = state.clone();
                    let flow = self.walk_list(body, &mut inner, &inner_ctx, tail);
                    outcomes.push((inner, flow));
                }
                self.join(state, outcomes, otherwise.is_none())
            }
            Command::Case { arms, .. } => {
                let mut outcomes = Vec::new();
                let mut catch_all = false;
                for arm in arms {
                    catch_all |= arm.patterns.iter().any(|p| {
                        matches!(p.parts.as_slice(), [Part::Lit { text, quoted: false }] if text == "*")
                    });
                    let pattern: Vec<String> = arm.patterns.iter().map(Word::display).collect();
                    let label = format!("case {})", pattern.join("|"));
                    let inner_ctx = ctx.choose(ctx.origin.at(arm.line), label);
                    let mut inner = state.clone();
                    let flow = self.walk_list(&arm.body, &mut inner, &inner_ctx, tail);
                    outcomes.push((inner, flow));
                }
                self.join(state, outcomes, !catch_all)
            }
            Command::Loop {
                condition, body, ..
            } => {
                let mut inner = state.clone();
                self.walk_list(condition, &mut inner, ctx, false);
                let flow = self.walk_list(body, &mut inner, ctx, tail);
                self.join(state, vec![(inner, flow)], true)
            }
            Command::For {
                line,
                var,
                words,
                body,
            } => {
                let location = ctx.origin.at(*line);
                let values = self.loop_values(words.as_deref(), state, &location);
                let mut outcomes = Vec::new();
                for value in values {
                    let mut inner = state.clone();
                    inner.set(var, value);
                    let flow = self.walk_list(body, &mut inner, ctx, tail);
                    outcomes.push((inner, flow));
                }
                self.join(state, outcomes, true)
            }
            Command::Simple { .. } | Command::Function { .. } | Command::Test { .. } => {
                unreachable!("walk_command handles simple commands, functions and tests")
            }
        }
    }

    /// The values a `for` loop variable takes: the words (globs expanded in the image), or one
    /// unknown value when they are not known.
    fn loop_values(
        &mut self,
        words: Option<&[Word]>,
        state: &mut State,
        at: &Location,
    ) -> Vec<Val> {
        let fields: Vec<Field> = match words {
            Some(words) => self
                .expand_words(words, state)
                .into_iter()
                .flatten()
                .collect(),
            None => match &state.args {
                Args::Known(lists) => lists.iter().flatten().cloned().collect(),
                Args::Unknown(why) => {
                    return vec![Val::Unknown(format!("iterates `$@`, which {why}"))];
                }
            },
        };
        let mut values = Vec::new();
        for field in fields {
            if let Some(why) = field.dynamic {
                return vec![Val::Unknown(format!(
                    "iterates `{}`, which depends on {why}",
                    field.text
                ))];
            }
            if field.glob {
                let matches = self.glob(&field.text, state);
                if matches.is_empty() {
                    values.push(field.text);
                } else {
                    values.extend(matches);
                }
            } else {
                values.push(field.text);
            }
        }
        if values.len() > MAX_LOOP_VALUES {
            self.unknown(
                Reason::DynamicEnvironmentReference,
                format!(
                    "for loop over {} values: only the first {MAX_LOOP_VALUES} are followed",
                    values.len()
                ),
                at.clone(),
            );
            values.truncate(MAX_LOOP_VALUES);
        }
        values.into_iter().map(Val::Known).collect()
    }
}

fn command_line(command: &Command) -> u32 {
    match command {
        Command::Simple { line, .. }
        | Command::Group { line, .. }
        | Command::If { line, .. }
        | Command::Case { line, .. }
        | Command::Loop { line, .. }
        | Command::For { line, .. }
        | Command::Function { line, .. }
        | Command::Test { line } => *line,
    }
}
