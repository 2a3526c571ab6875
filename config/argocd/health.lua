-- Argo CD health for every Stella Ops kind (Scan, Policy, FeedSource, Schedule, NotifyRule,
-- NotifyChannel), from the kstatus conditions the operator writes. Lua 5.1 (gopher-lua).
--   Suspended    spec.suspend (FeedSource, Schedule) or spec.enabled: false (NotifyRule,
--                NotifyChannel)
--   Progressing  no status yet, status.observedGeneration behind metadata.generation, or
--                Reconciling=True (a sync, a scan, a run under way)
--   Degraded     Stalled=True (invalid spec, missing reference, failed last attempt) or
--                Ready=False
--   Healthy      Ready=True
-- The message is the deciding condition's reason and message. A Scan whose verdict is FAIL is
-- Healthy (the scan worked; the verdict is in the message and in `kubectl get scans`).
local hs = {}

local function condition(kind)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function say(c)
  local reason = c.reason or c.type
  if c.message ~= nil and c.message ~= "" and c.message ~= reason then
    return reason .. ": " .. c.message
  end
  return reason
end

local spec = obj.spec or {}
if spec.suspend == true then
  hs.status = "Suspended"
  hs.message = obj.kind .. " is suspended (spec.suspend)"
  return hs
end
if (obj.kind == "NotifyRule" or obj.kind == "NotifyChannel") and spec.enabled == false then
  hs.status = "Suspended"
  hs.message = obj.kind .. " is disabled (spec.enabled: false)"
  return hs
end

if obj.status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator"
  return hs
end

local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local stalled = condition("Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = say(stalled)
  return hs
end

local reconciling = condition("Reconciling")
if reconciling ~= nil and reconciling.status == "True" then
  hs.status = "Progressing"
  hs.message = say(reconciling)
  return hs
end

local ready = condition("Ready")
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = say(ready)
  return hs
end
if ready ~= nil and ready.status == "False" then
  hs.status = "Degraded"
  hs.message = say(ready)
  return hs
end

hs.status = "Progressing"
hs.message = "Waiting for the operator"
return hs
