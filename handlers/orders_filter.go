package handlers

import (
	"certdesk/store"
	"certdesk/views"
)

func storeOrderFilter(vm views.OrderListVM, offset int) store.OrderFilter {
	return store.OrderFilter{Status: vm.Status, Product: vm.Product, Email: vm.Email, Limit: 50, Offset: offset}
}
