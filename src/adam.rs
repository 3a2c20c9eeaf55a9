//! Adam (Kingma & Ba 2014) with its moments in our hands, so a checkpoint can read them back
//! asynchronously. burn's `ModuleOptimizer::to_record` reads its state synchronously, which
//! panics on WebGPU in the browser; the update itself is exactly burn-optim 0.22.1's `Adam`
//! (bias corrections folded into one factor, epsilon scaled by sqrt(1 - beta2^t)).

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;

/// The two moment estimates of one parameter, flattened, on the plain (no autodiff) device.
#[derive(Clone)]
pub struct Moments {
    /// First moment (mean of gradients).
    pub m: Tensor<1>,
    /// Second moment (mean of squared gradients).
    pub v: Tensor<1>,
}

/// Adam over a whole module; one `step` per module update.
#[derive(Clone)]
pub struct Adam {
    beta1: f32,
    beta2: f32,
    epsilon: f32,
    /// Updates done. Every parameter with a gradient is updated at every step (parameters
    /// without one, such as spectral-norm vectors, never are), so one count serves them all.
    time: u64,
    moments: HashMap<ParamId, Moments>,
}

impl Adam {
    /// A fresh optimizer (zero moments).
    pub fn new(beta1: f32, beta2: f32, epsilon: f32) -> Self {
        Adam {
            beta1,
            beta2,
            epsilon,
            time: 0,
            moments: HashMap::new(),
        }
    }

    /// Updates done so far.
    pub fn time(&self) -> u64 {
        self.time
    }

    /// The moments of parameter `id`, once it has been updated.
    pub fn moments(&self, id: ParamId) -> Option<&Moments> {
        self.moments.get(&id)
    }

    /// Restores saved state: `time` updates done and the moments of each parameter.
    pub fn restore(&mut self, time: u64, moments: HashMap<ParamId, Moments>) {
        self.time = time;
        self.moments = moments;
    }

    /// One update of every parameter of `module` that has a gradient in `grads`.
    pub fn step<M: Module>(&mut self, lr: f64, module: M, grads: GradientsParams) -> M {
        self.time += 1;
        let t = self.time.min(i32::MAX as u64) as i32;
        let correction2 = (1.0 - self.beta2.powi(t)).sqrt();
        let factor = correction2 / (1.0 - self.beta1.powi(t));
        let epsilon = self.epsilon * correction2;
        let mut mapper = Update {
            adam: self,
            grads,
            lr,
            factor,
            epsilon,
        };
        module.map(&mut mapper)
    }
}

struct Update<'a> {
    adam: &'a mut Adam,
    grads: GradientsParams,
    lr: f64,
    /// sqrt(1 - beta2^t) / (1 - beta1^t).
    factor: f32,
    /// epsilon * sqrt(1 - beta2^t).
    epsilon: f32,
}

impl ModuleMapper for Update<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let Some(grad) = self.grads.remove::<D>(id) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let (b1, b2) = (self.adam.beta1, self.adam.beta2);
        let shape = tensor.dims();
        let n = shape.iter().product::<usize>();
        let require_grad = tensor.is_require_grad();
        let checkpointing = tensor.gradient_checkpointing_strategy();
        let value = tensor.inner(); // [..shape]
        let g = grad.reshape([n]); // [n]
        let moments = match self.adam.moments.remove(&id) {
            Some(Moments { m, v }) => Moments {
                m: m.mul_scalar(b1) + g.clone().mul_scalar(1.0 - b1),
                v: v.mul_scalar(b2) + g.square().mul_scalar(1.0 - b2),
            },
            // Zero moments: the same values burn's first step computes.
            None => Moments {
                m: g.clone().mul_scalar(1.0 - b1),
                v: g.square().mul_scalar(1.0 - b2),
            },
        };
        let delta = moments
            .m
            .clone()
            .mul_scalar(self.factor)
            .div(moments.v.clone().sqrt().add_scalar(self.epsilon)); // [n]
        self.adam.moments.insert(id, moments);
        let updated = value - delta.mul_scalar(self.lr).reshape(shape); // [..shape]
        let mut updated = Tensor::from_inner(updated);
        if let Some(strategy) = checkpointing {
            updated = updated.with_gradient_checkpointing_strategy(strategy);
        }
        if require_grad {
            updated = updated.require_grad();
        }
        Param::from_mapped_value(id, updated, mapper)
    }
}
