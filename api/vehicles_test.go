package api_test

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/motorpool/motorpool/client"
)

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestVehicleLifecycle(t *testing.T) {
	eachBackend(t, func(t *testing.T, newBackend func(testing.TB) backend) {
		s := newTestServer(t, newBackend(t))
		ctx := context.Background()
		ada := mustUser(t, s, "ada@example.com")
		bob := mustUser(t, s, "bob@example.com")

		cr, err := s.Client.CreateVehicleWithResponse(ctx, client.CreateVehicleJSONRequestBody{
			UserId: &ada.Id, Make: "Benz", Model: "Patent-Motorwagen", Year: 1886, Vin: "WDB00000000000001", LicensePlate: "B-1886", Color: ptr("black"),
		})
		if err != nil {
			t.Fatal(err)
		}
		if cr.JSON201 == nil {
			t.Fatalf("create: %d %s", cr.StatusCode(), cr.Body)
		}
		v := *cr.JSON201
		if got, want := cr.HTTPResponse.Header.Get("Location"), "/vehicles/"+itoa(v.Id); got != want {
			t.Errorf("Location = %q, want %q", got, want)
		}
		want := client.Vehicle{Id: v.Id, UserId: ada.Id, Make: "Benz", Model: "Patent-Motorwagen", Year: 1886, Vin: "WDB00000000000001",
			LicensePlate: "B-1886", Color: ptr("black"), CreatedAt: v.CreatedAt, UpdatedAt: v.CreatedAt}
		if diff := cmp.Diff(want, v); diff != "" {
			t.Errorf("created vehicle (-want +got):\n%s", diff)
		}
		g, err := s.Client.GetVehicleWithResponse(ctx, v.Id, nil)
		if err != nil || g.JSON200 == nil {
			t.Fatalf("get: %v %d %s", err, g.StatusCode(), g.Body)
		}
		if diff := cmp.Diff(v, *g.JSON200); diff != "" {
			t.Errorf("get (-create +get):\n%s", diff)
		}

		// PUT without userId keeps the owner; an absent color clears it.
		up, err := s.Client.UpdateVehicleWithResponse(ctx, v.Id, client.UpdateVehicleJSONRequestBody{
			Make: "Mercedes-Benz", Model: "Patent-Motorwagen", Year: 1886, Vin: "WDB00000000000001", LicensePlate: "B-1886",
		})
		if err != nil || up.JSON200 == nil {
			t.Fatalf("update: %v %d %s", err, up.StatusCode(), up.Body)
		}
		if up.JSON200.UserId != ada.Id || up.JSON200.Make != "Mercedes-Benz" || up.JSON200.Color != nil || !up.JSON200.UpdatedAt.After(v.UpdatedAt) {
			t.Errorf("updated = %+v", *up.JSON200)
		}
		// PUT with userId moves it.
		up, err = s.Client.UpdateVehicleWithResponse(ctx, v.Id, client.UpdateVehicleJSONRequestBody{
			UserId: &bob.Id, Make: "Mercedes-Benz", Model: "Patent-Motorwagen", Year: 1886, Vin: "WDB00000000000001", LicensePlate: "B-1886",
		})
		if err != nil || up.JSON200 == nil || up.JSON200.UserId != bob.Id {
			t.Fatalf("move to bob: %v %d %s", err, up.StatusCode(), up.Body)
		}
		lb, err := s.Client.ListUserVehiclesWithResponse(ctx, bob.Id, nil)
		if err != nil || lb.JSON200 == nil || len(lb.JSON200.Items) != 1 || lb.JSON200.Items[0].Id != v.Id {
			t.Fatalf("bob's vehicles after move: %v %s", err, lb.Body)
		}
		la, err := s.Client.ListVehiclesWithResponse(ctx, &client.ListVehiclesParams{UserId: &ada.Id})
		if err != nil || la.JSON200 == nil || len(la.JSON200.Items) != 0 {
			t.Fatalf("ada's vehicles after move: %v %s", err, la.Body)
		}

		// A taken VIN is 409; an owner that does not exist is 422; both name the field.
		other := mustVehicle(t, s, ada.Id, 2)
		dupe, err := s.Client.CreateVehicleWithResponse(ctx, client.CreateVehicleJSONRequestBody{
			UserId: &ada.Id, Make: "VW", Model: "Golf", Year: 2020, Vin: "WDB00000000000001", LicensePlate: "X",
		})
		if err != nil {
			t.Fatal(err)
		}
		if dupe.StatusCode() != http.StatusConflict || cmp.Diff([]string{"vin"}, problemFields(*dupe.ApplicationproblemJSON409)) != "" {
			t.Errorf("duplicate VIN on create: %d %s", dupe.StatusCode(), dupe.Body)
		}
		upDupe, err := s.Client.UpdateVehicleWithResponse(ctx, other.Id, client.UpdateVehicleJSONRequestBody{
			Make: "VW", Model: "Golf", Year: 2020, Vin: "WDB00000000000001", LicensePlate: "X",
		})
		if err != nil {
			t.Fatal(err)
		}
		if upDupe.StatusCode() != http.StatusConflict {
			t.Errorf("duplicate VIN on update: %d %s", upDupe.StatusCode(), upDupe.Body)
		}
		orphan, err := s.Client.CreateVehicleWithResponse(ctx, client.CreateVehicleJSONRequestBody{
			UserId: ptr(int64(987654321)), Make: "VW", Model: "Golf", Year: 2020, Vin: vin(99), LicensePlate: "X",
		})
		if err != nil {
			t.Fatal(err)
		}
		if orphan.StatusCode() != http.StatusUnprocessableEntity || cmp.Diff([]string{"userId"}, problemFields(*orphan.ApplicationproblemJSON422)) != "" {
			t.Errorf("unknown owner on create: %d %s", orphan.StatusCode(), orphan.Body)
		}
		upOrphan, err := s.Client.UpdateVehicleWithResponse(ctx, other.Id, client.UpdateVehicleJSONRequestBody{
			UserId: ptr(int64(987654321)), Make: "VW", Model: "Golf", Year: 2020, Vin: vin(2), LicensePlate: "X",
		})
		if err != nil {
			t.Fatal(err)
		}
		if upOrphan.StatusCode() != http.StatusUnprocessableEntity {
			t.Errorf("unknown owner on update: %d %s", upOrphan.StatusCode(), upOrphan.Body)
		}

		d, err := s.Client.DeleteVehicleWithResponse(ctx, other.Id)
		if err != nil || d.StatusCode() != http.StatusNoContent {
			t.Fatalf("delete: %v %d %s", err, d.StatusCode(), d.Body)
		}
		for _, code := range []int{
			func() int { r, _ := s.Client.GetVehicleWithResponse(ctx, other.Id, nil); return r.StatusCode() }(),
			func() int { r, _ := s.Client.DeleteVehicleWithResponse(ctx, other.Id); return r.StatusCode() }(),
			func() int {
				r, _ := s.Client.UpdateVehicleWithResponse(ctx, other.Id, client.UpdateVehicleJSONRequestBody{Make: "VW", Model: "Golf", Year: 2020, Vin: vin(2), LicensePlate: "X"})
				return r.StatusCode()
			}(),
		} {
			if code != http.StatusNotFound {
				t.Errorf("after delete: %d, want 404", code)
			}
		}
	})
}

func TestDeleteUserCascades(t *testing.T) {
	eachBackend(t, func(t *testing.T, newBackend func(testing.TB) backend) {
		s := newTestServer(t, newBackend(t))
		ctx := context.Background()
		ada := mustUser(t, s, "ada@example.com")
		bob := mustUser(t, s, "bob@example.com")
		var adas []client.Vehicle
		for i := range 3 {
			adas = append(adas, mustVehicle(t, s, ada.Id, i+1))
		}
		bobs := mustVehicle(t, s, bob.Id, 10)

		if r, err := s.Client.DeleteUserWithResponse(ctx, ada.Id); err != nil || r.StatusCode() != http.StatusNoContent {
			t.Fatalf("delete ada: %v %d", err, r.StatusCode())
		}
		for _, v := range adas {
			if r, _ := s.Client.GetVehicleWithResponse(ctx, v.Id, nil); r.StatusCode() != http.StatusNotFound {
				t.Errorf("vehicle %d of a deleted user: %d, want 404", v.Id, r.StatusCode())
			}
		}
		all, err := s.Client.ListVehiclesWithResponse(ctx, nil)
		if err != nil || all.JSON200 == nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]client.Vehicle{bobs}, all.JSON200.Items); diff != "" {
			t.Errorf("vehicles left (-want +got):\n%s", diff)
		}
	})
}

// Paging through a list while others insert never repeats an item and never skips one that
// existed when paging began.
func TestPaginationUnderConcurrentInserts(t *testing.T) {
	eachBackend(t, func(t *testing.T, newBackend func(testing.TB) backend) {
		s := newTestServer(t, newBackend(t))
		ctx := context.Background()
		owner := mustUser(t, s, "owner@example.com")
		before := map[int64]bool{}
		for i := range 23 {
			before[mustVehicle(t, s, owner.Id, i+1).Id] = true
		}

		// The inserter runs while the first pages are read, then stops; the rest of the
		// listing must include everything it inserted.
		done := make(chan struct{})
		inserted := make(chan int, 1)
		warm := make(chan struct{}) // closed after a few inserts, so paging provably overlaps them
		go func() {
			n := 0
			defer func() { inserted <- n }()
			for i := 1000; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				r, err := s.Client.CreateVehicleWithResponse(ctx, client.CreateVehicleJSONRequestBody{
					UserId: &owner.Id, Make: "Toyota", Model: "Corolla", Year: 2020, Vin: vin(i), LicensePlate: "AB-123-CD",
				})
				if err != nil || r.JSON201 == nil {
					t.Errorf("concurrent insert: %v", err)
					return
				}
				n++
				if n == 3 {
					close(warm)
				}
			}
		}()

		seen := map[int64]bool{}
		var last int64
		var cursor *string
		n := -1
		for pages := 1; ; pages++ {
			r, err := s.Client.ListVehiclesWithResponse(ctx, &client.ListVehiclesParams{Limit: ptr(client.Limit(5)), Cursor: cursor})
			if err != nil || r.JSON200 == nil {
				t.Fatalf("page %d: %v %s", pages, err, r.Body)
			}
			if len(r.JSON200.Items) > 5 {
				t.Fatalf("page of %d items with limit 5", len(r.JSON200.Items))
			}
			for _, v := range r.JSON200.Items {
				if seen[v.Id] {
					t.Fatalf("vehicle %d listed twice", v.Id)
				}
				if v.Id <= last {
					t.Fatalf("ids out of order: %d after %d", v.Id, last)
				}
				seen[v.Id], last = true, v.Id
			}
			if pages == 1 {
				select {
				case <-warm:
				case <-time.After(30 * time.Second):
					t.Fatal("the inserter made no progress")
				}
			}
			if pages == 3 {
				close(done)
				n = <-inserted
			}
			cursor = r.JSON200.NextCursor
			if cursor == nil {
				break
			}
			if pages > 1000 {
				t.Fatal("listing does not end")
			}
		}
		if n < 0 {
			close(done)
			n = <-inserted
			t.Fatal("the listing ended before the inserter was stopped")
		}
		for id := range before {
			if !seen[id] {
				t.Errorf("vehicle %d existed before paging and was skipped", id)
			}
		}
		if n == 0 {
			t.Error("no vehicle was inserted during paging: the test proved nothing")
		}
		// Everything inserted was seen too, since the last page was read after the inserter stopped.
		if len(seen) != len(before)+n {
			t.Errorf("saw %d vehicles, %d existed and %d were inserted", len(seen), len(before), n)
		}
	})
}
