package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"

	"github.com/flowsentry/flowsentry/config"
	"github.com/flowsentry/flowsentry/config/check"
	"github.com/flowsentry/flowsentry/model"
	"github.com/flowsentry/flowsentry/plugin"
	"github.com/flowsentry/flowsentry/policy"
	"github.com/flowsentry/flowsentry/store"
)

// preflight runs the checks serve's start makes on the configuration
// file — plugin instances against their plugins' gui.json, policies
// against the model, each other and the instances — without writing
// anything: against the stored policies and instances when the database
// exists (opened read-only), else as on a first start. The errors point
// at the file's lines. It returns the policies as they would be in force,
// which replay runs.
func preflight(ctx context.Context, f *config.File, holder *model.Holder, reg *plugin.Registry, log *slog.Logger) (*policy.Manager, error) {
	cfg := &f.Config
	policies := &policy.MemStore{}
	instances := &plugin.MemInstances{}
	if store.Exists(cfg.DataDir) {
		if err := copyStored(ctx, cfg.DataDir, log, policies, instances); err != nil {
			return nil, err
		}
	}
	inst := plugin.NewInstances(reg, instances)
	if _, err := inst.Load(ctx, cfg.Instances); err != nil {
		return nil, f.Locate(err)
	}
	pm := policy.NewManager(policies, refChecker{model: holder, instances: inst})
	if err := pm.Load(ctx, cfg.Policies, partitionIDs(holder.Load())); err != nil {
		return nil, f.Locate(err)
	}
	return pm, nil
}

// copyStored copies the stored policies and instances of the database in
// dir, opened read-only, into memory.
func copyStored(ctx context.Context, dir string, log *slog.Logger, policies policy.Store, instances plugin.InstanceStore) error {
	st, err := store.OpenReadOnly(ctx, dir, log)
	if err != nil {
		return err
	}
	defer st.Close()
	docs, err := st.Policies(ctx)
	if err != nil {
		return err
	}
	for id, doc := range docs {
		if err := policies.SavePolicy(ctx, id, doc); err != nil {
			return err
		}
	}
	list, err := st.Instances(ctx)
	if err != nil {
		return err
	}
	for i := range list {
		if err := instances.SaveInstance(ctx, &list[i]); err != nil {
			return err
		}
	}
	return nil
}

// partitionIDs lists the CIDs of the model's partitions.
func partitionIDs(m *model.Model) []uint32 {
	cids := make([]uint32, 0, len(m.Partitions))
	for _, p := range m.Partitions {
		cids = append(cids, p.CID)
	}
	return cids
}

// refChecker checks what a policy refers to: its partition, traffic group
// and plugin instances with their overrides. Its errors are at the key
// paths of the policy's fields.
type refChecker struct {
	model     *model.Holder
	instances *plugin.Instances
}

// CheckRefs implements policy.Checker.
func (c refChecker) CheckRefs(p *policy.Policy) error {
	m := c.model.Load()
	if !slices.ContainsFunc(m.Partitions, func(pt model.Partition) bool { return pt.CID == p.CID }) {
		return check.Errorf("cid", "partition %d does not exist; use one of the partitions (cid) of the configuration", p.CID)
	}
	if p.Group != 0 && !slices.ContainsFunc(m.Groups, func(g model.TrafficGroup) bool { return g.ID == p.Group && g.CID == p.CID }) {
		return check.Errorf("tgrp", "traffic group %d does not exist in partition %d; use one of its traffic_groups, or none for a template", p.Group, p.CID)
	}
	for i, at := range p.Actions {
		path := fmt.Sprintf("actions[%d]", i)
		in, ok := c.instances.Get(at.Instance)
		if !ok {
			return check.Errorf(path+".instance", "plugin instance %d does not exist; define it under instances or create it with the API", at.Instance)
		}
		if in.CID != p.CID {
			return check.Errorf(path+".instance", "plugin instance %d belongs to partition %d, the policy to %d", at.Instance, in.CID, p.CID)
		}
		if err := c.instances.CheckOverrides(at.Instance, at.Overrides); err != nil {
			return check.Prefix(path, err)
		}
	}
	return nil
}
